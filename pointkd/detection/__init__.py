"""3D object detection: boxes, anchors, heads, detectors, evaluation."""
