"""Audio in: decoding (:mod:`.io`), ImageBind's preprocessing contract (:mod:`.features`), the ImageBind audio and
text towers (:mod:`.imagebind`) and the CLIP BPE tokenizer ImageBind's text tower uses (:mod:`.tokenizer`).

Submodules are imported on demand; importing this package does not import torch.
"""
