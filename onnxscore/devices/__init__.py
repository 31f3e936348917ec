"""Built-in device profiles: one TOML file per device, every number cited or derived in it.

See :func:`onnxscore.device.load_device` for the format; ``local`` is not a file here but a
calibration of the machine onnxscore runs on (:func:`onnxscore.device.calibrate_local`).
"""
