"""Generated flatbuffer classes of the TFLite metadata schemas (vendored, not hand-written).

``metadata_schema_py_generated.py`` and ``image_segmenter_metadata_schema_py_generated.py`` are
the files the FlatBuffers compiler generated from ``metadata_schema.fbs`` and
``image_segmenter_metadata_schema.fbs`` (both here, Apache-2.0, The MediaPipe Authors), as
shipped in the ``mediapipe`` 1.2.3 wheel (``mediapipe/tasks/metadata/``).  They are copied
unchanged; regenerate with ``flatc --python --gen-object-api --gen-onefile`` from the .fbs files.
No runtime package mtkseg depends on ships them.
"""
