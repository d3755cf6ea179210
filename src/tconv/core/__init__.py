"""The core operator: size arithmetic (:mod:`.shapes`), padding modes (:mod:`.padding`), argument
validation into one frozen :class:`~tconv.core.spec.ConvSpec` (:mod:`.spec`), the public functions
(:mod:`.functional`) and the PyTorch-style layers (:mod:`.layers`)."""
