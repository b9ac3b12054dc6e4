"""Fine-tuning: frozen encoder groups, LoRA adapters (peft) and per-group learning rates."""

from __future__ import annotations

from torch import nn

from vla_core.config import LoraConfig, TrainConfig

LORA_GROUPS = ("fusion", "head")


def add_lora(policy, config: LoraConfig) -> None:
    """Inject LoRA adapters into the attention projections of the fusion encoder and the head.

    The base weights of those groups are frozen; only the adapters train there.
    """
    from peft import LoraConfig as PeftLoraConfig
    from peft import inject_adapter_in_model

    peft_config = PeftLoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                                 target_modules=list(config.target_modules))
    for name in LORA_GROUPS:
        module = getattr(policy, name)
        inject_adapter_in_model(peft_config, module)
        for pname, param in module.named_parameters():
            param.requires_grad_("lora_" in pname)


def apply_freezing(policy, config: TrainConfig) -> None:
    """Freeze the groups named in ``config.freeze`` (and a frozen pretrained language model)."""
    groups = policy.module_groups()
    for name in config.freeze:
        groups[name].requires_grad_(False)
    if policy.language.frozen:
        policy.language.model.requires_grad_(False)


def param_groups(policy, config: TrainConfig) -> list[dict]:
    """AdamW parameter groups: one per module group with its learning-rate multiplier.

    Biases and norm weights get no weight decay.
    """
    out = []
    for name, module in policy.module_groups().items():
        mult = config.lr_multipliers.get(name, 1.0)
        decay, no_decay = [], []
        for pname, param in module.named_parameters():
            if not param.requires_grad:
                continue
            (no_decay if param.dim() < 2 or pname.endswith(".bias") else decay).append(param)
        if decay:
            out.append({"params": decay, "lr": config.lr * mult, "weight_decay": config.weight_decay, "name": name})
        if no_decay:
            out.append({"params": no_decay, "lr": config.lr * mult, "weight_decay": 0.0, "name": f"{name}.no_decay"})
    return out


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return trainable, total
