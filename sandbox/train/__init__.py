"""Training: LoRA fine-tuning on a run's traces or an export's rows, out as a llama.cpp adapter GGUF.

``train(TrainOptions(data=..., out=...), progress=...) -> TrainResult`` is the whole room: the base
weights come from the GGUF itself (transformers reads it), peft adds LoRA, TRL's ``SFTTrainer``
(loss on the assistant's tokens only) or ``DPOTrainer`` trains, and the adapter is written as a
GGUF that ``--lora`` (``LlamaModel(lora_path=...)``) loads on the unchanged base. The training
stack (torch, transformers, peft, trl, accelerate, gguf) is the ``train`` extra, imported only
when training starts.
"""

from sandbox.train._engine import TrainOptions, TrainProgress, TrainResult, train
from sandbox.train._errors import CheckpointError, ResumeRefused, TrainDataError, TrainingStackMissing
from sandbox.train._templates import training_template

__all__ = [
    "CheckpointError",
    "ResumeRefused",
    "TrainDataError",
    "TrainOptions",
    "TrainProgress",
    "TrainResult",
    "TrainingStackMissing",
    "train",
    "training_template",
]
