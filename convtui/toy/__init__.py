"""The X/O toy ConvNet and the mechanics lessons: small, exact maths with every intermediate kept."""
