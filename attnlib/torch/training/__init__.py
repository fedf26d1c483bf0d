"""Training: the one loop, the losses, learning-rate schedules and safetensors checkpoints.

The package re-exports the public names (``__all__``) of its modules."""
from attnlib.torch.training import checkpoints as _checkpoints
from attnlib.torch.training import loop as _loop
from attnlib.torch.training import losses as _losses
from attnlib.torch.training import schedules as _schedules
from attnlib.torch.training.checkpoints import *  # noqa: F403
from attnlib.torch.training.loop import *  # noqa: F403
from attnlib.torch.training.losses import *  # noqa: F403
from attnlib.torch.training.schedules import *  # noqa: F403

__all__ = [*_loop.__all__, *_losses.__all__, *_schedules.__all__, *_checkpoints.__all__]
