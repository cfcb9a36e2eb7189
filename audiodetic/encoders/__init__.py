"""Encoders: what turns a prompt into a vector. Sounds (:mod:`.audio`: decoding, ImageBind's input contract, the
ImageBind audio and text towers, Wav2CLIP), CLIP ViT-B/32 text (:mod:`.clip_text`) and images (:mod:`.clip_image`),
and the process-wide cache of their outputs (:mod:`.cache`).

The protocols every encoder satisfies live in :mod:`.protocols`. Submodules are imported on demand; importing this
package does not import torch.
"""
