"""The mtkseg training recipe (needs the ``train`` extra: TensorFlow/Keras, matplotlib).

Sub-modules:
    models    the reference UNet (:func:`mtkseg.train.models.unet`)
    pipeline  tf.data input pipeline and augmentations
    losses    masked cross-entropy, L2 on conv kernels, learning-rate schedules
    loop      the training loop (validation, checkpoints, CSV log, resume, curves)
    export    TFLite conversion (float32/float16/dynamic/int8)
    sidecar   the sidecar JSON written next to an exported model (no TensorFlow needed)
    curves    loss/mIoU plots from a run's CSV log

``python -m mtkseg.train`` is ``mtkseg train``.
"""
