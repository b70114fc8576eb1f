"""The values a label mask holds, shared by the data, the mask module, the losses and the metrics.

``BACKGROUND`` and ``LANDSLIDE`` are the two classes (landslide is the positive class of
every metric); ``IGNORE`` marks pixels that are not part of the image (the zero padding
of a tile that runs past a scene's edge, or of a non-square tile made square): they are
neither trained on nor counted.
"""

BACKGROUND, LANDSLIDE, IGNORE = 0, 1, 255
