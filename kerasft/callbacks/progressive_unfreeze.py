"""`ProgressiveUnfreeze`: opens backbone groups top-down at epoch boundaries."""

import keras

from kerasft.callbacks import _optimizer_state
from kerasft.callbacks import _unfreeze_plan as plan_lib
from kerasft.freezing import set_trainable_groups


@keras.saving.register_keras_serializable(package="kerasft")
class ProgressiveUnfreeze(keras.callbacks.Callback):
    """Unfreezes backbone groups from the top at epoch boundaries in one `fit`.

    `schedule` maps a 0-based epoch to how many backbone groups train from
    that epoch on, counted from the top (output side), or `"all"`. Epochs
    before the first key train the head only. The stage changes inside one
    `fit` call, with no recompile:

    - Before training, every variable that the schedule ever trains is made
      trainable and the optimizer is built over all of them (or, if `fit`
      already built it over fewer, e.g. under a `tf.distribute` strategy,
      replaced by a copy from its config built over all of them, keeping its
      step counter and slots). Each stage then trains a subset, so stages
      keep the optimizer state and the schedule's step.
    - At each stage change the layers' `trainable` flags are set and the
      train function is retraced. Frozen groups are not differentiated, so
      head-only epochs cost a fraction of full ones.
    - BatchNormalization layers stay non-trainable (moving statistics
      untouched) unless `train_batchnorm=True`.
    - Between epochs and after `fit`, every scheduled group is left
      trainable (the stage is set again when the next epoch begins), so
      `model.trainable_weights` match the optimizer: a `.keras` checkpoint
      written at an epoch end (place `ProgressiveUnfreeze` before
      `ModelCheckpoint`) reloads its optimizer state, and `use_ema`
      optimizers finalize correctly.
    - The stage is a function of the epoch only: a run resumed by
      `keras.callbacks.BackupAndRestore` (at any position in the callback
      list) continues with the right groups trainable, and the restored
      optimizer state matches because the optimizer is prepared in
      `set_model`, before any callback's `on_train_begin`.

    Callbacks are not saved in `.keras` files; `get_config` holds the plain
    arguments (not the backbone), so rebuild one with
    `ProgressiveUnfreeze.from_config({**config, "backbone": backbone})`.

    Args:
        backbone: the `kerasft.backbones.Backbone` nested in the model.
        schedule: dict `{epoch: number of top groups or "all"}`, e.g.
            `{0: 0, 2: 2, 4: "all"}`.
        learning_rates: optional dict `{epoch: base learning rate}` assigned
            to `model.optimizer.learning_rate` when that epoch begins (e.g.
            `{0: 1e-3, 2: 1e-5}`); a fit that starts or resumes at epoch e
            sets the rate of the latest key `<= e`. Needs an optimizer with
            a settable rate (a float, not a schedule); `LayerwiseLR` scales
            every group with its base rate. For a schedule restarted in each
            stage, leave this `None` and give the optimizer a
            `kerasft.optimizers.StagedSchedule` whose boundaries are the
            stages' first steps. Defaults to `None`.
        train_batchnorm: whether BatchNormalization layers of opened groups
            train too. Defaults to `False`.
        verbose: 1 prints each stage change, 0 stays quiet, `"auto"`
            prints only when `fit` itself is not quiet (`fit(verbose=0)`
            silences it). Defaults to `"auto"`.

    Example:

    ```python
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="c1")(inputs)
    x = keras.layers.Conv2D(4, 3, name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    net = keras.Model(inputs, x, name="tiny")
    backbone = kerasft.backbones.Backbone(
        net, None, [("g1", ["c1"]), ("g2", ["c2", "gap"])], "tiny")
    outer_in = keras.Input((8, 8, 3))
    outputs = keras.layers.Dense(1)(net(outer_in, training=False))
    model = keras.Model(outer_in, outputs)
    model.compile("adam", "mse")
    unfreeze = kerasft.callbacks.ProgressiveUnfreeze(
        backbone, {0: 0, 1: 1, 2: "all"}, verbose=0)
    model.fit(np.ones((8, 8, 8, 3)), np.ones((8, 1)), epochs=3,
              callbacks=[unfreeze], verbose=0)
    ```
    """

    def __init__(
        self,
        backbone,
        schedule,
        learning_rates=None,
        train_batchnorm=False,
        verbose="auto",
    ):
        super().__init__()
        if not hasattr(backbone, "groups") or not hasattr(backbone, "model"):
            raise TypeError(
                "`backbone` must be a kerasft Backbone (with `.model` and "
                f"`.groups`). Received: backbone={backbone!r}"
            )
        if not backbone.groups:
            raise ValueError(
                f"`backbone` has no groups to unfreeze. Received: {backbone!r}"
            )
        if not isinstance(train_batchnorm, bool):
            raise TypeError(
                "`train_batchnorm` must be a bool. Received: "
                f"train_batchnorm={train_batchnorm!r}"
            )
        if verbose not in (0, 1, "auto"):
            raise ValueError(
                f"`verbose` must be 0, 1 or 'auto'. Received: verbose={verbose!r}"
            )
        self.backbone = backbone
        self.schedule = dict(schedule) if isinstance(schedule, dict) else schedule
        self.learning_rates = (
            dict(learning_rates)
            if isinstance(learning_rates, dict)
            else learning_rates
        )
        self.train_batchnorm = train_batchnorm
        self.verbose = verbose
        self._plan = plan_lib.normalize_schedule(
            schedule, len(backbone.groups)
        )
        self._rates = plan_lib.normalize_rates(learning_rates)
        self._applied = None
        self._first_epoch = True

    # === Helpers for common schedules ===

    @classmethod
    def three_stages(
        cls, backbone, head_epochs=1, top_epochs=1, top_groups=1, **kwargs
    ):
        """Head only, then the top `top_groups` groups, then everything.

        The classic transfer-learning tutorial: train the new head on a
        frozen base, fine-tune the top of the base, then all of it (pass
        `learning_rates={head_epochs: 1e-5, head_epochs + top_epochs: 1e-6}`
        for its lower rates).

        Args:
            backbone: the `Backbone` nested in the model.
            head_epochs: epochs with the backbone frozen. Defaults to `1`.
            top_epochs: epochs with only the top groups open. Defaults to `1`.
            top_groups: number of top groups in the middle stage.
                Defaults to `1`.
            **kwargs: further `ProgressiveUnfreeze` arguments.
        """
        for name, value in (
            ("head_epochs", head_epochs),
            ("top_epochs", top_epochs),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"`{name}` must be an int >= 1. Received: {name}={value!r}"
                )
        schedule = {
            0: 0,
            head_epochs: top_groups,
            head_epochs + top_epochs: plan_lib.ALL,
        }
        return cls(backbone, schedule, **kwargs)

    @classmethod
    def one_group_per_epoch(cls, backbone, epochs_per_group=1, **kwargs):
        """ULMFiT's gradual unfreezing: head only, then one more group each
        `epochs_per_group` epochs, from the top down, until all train.

        Args:
            backbone: the `Backbone` nested in the model.
            epochs_per_group: epochs between two openings. Defaults to `1`.
            **kwargs: further `ProgressiveUnfreeze` arguments.
        """
        if (
            isinstance(epochs_per_group, bool)
            or not isinstance(epochs_per_group, int)
            or epochs_per_group < 1
        ):
            raise ValueError(
                "`epochs_per_group` must be an int >= 1. Received: "
                f"epochs_per_group={epochs_per_group!r}"
            )
        count = len(backbone.groups)
        schedule = {i * epochs_per_group: i for i in range(count)}
        schedule[count * epochs_per_group] = plan_lib.ALL
        return cls(backbone, schedule, **kwargs)

    # === Plan queries ===

    def groups_at(self, epoch):
        """Names of the backbone groups that train at `epoch`."""
        return plan_lib.groups_at(self.backbone.group_names, self._plan, epoch)

    def _scheduled_groups(self):
        return plan_lib.top_groups(
            self.backbone.group_names, plan_lib.max_count(self._plan)
        )

    # === Callback hooks ===

    def set_model(self, model):
        super().set_model(model)
        self._applied = None
        # `fit` calls this before any `on_train_begin`, so a BackupAndRestore
        # anywhere in the list loads into an optimizer over every variable.
        if getattr(model, "optimizer", None) is not None and model.built:
            self._prepare()

    def on_train_begin(self, logs=None):
        self._first_epoch = True
        self._prepare()

    def on_epoch_begin(self, epoch, logs=None):
        groups = self.groups_at(epoch)
        # Flags are set every epoch (`on_epoch_end` may have widened them);
        # the train function is retraced only when the stage changes.
        set_trainable_groups(
            self.backbone, groups, train_batchnorm=self.train_batchnorm
        )
        if groups != self._applied:
            self.model.make_train_function(force=True)
            if self._should_print():
                print(
                    f"\nEpoch {epoch + 1}: ProgressiveUnfreeze training "
                    f"{len(groups)}/{len(self.backbone.groups)} backbone "
                    f"groups: {list(groups)}"
                )
            self._applied = groups
        if epoch in self._rates:
            rate = self._rates[epoch]
        elif self._first_epoch:
            rate = plan_lib.latest_at(self._rates, epoch)
        else:
            rate = None
        self._first_epoch = False
        if rate is not None:
            self.model.optimizer.learning_rate = rate

    def on_epoch_end(self, epoch, logs=None):
        # Between epochs (and after `fit`) the trainable variables are the
        # ones the optimizer was built over, whatever the stage: a `.keras`
        # checkpoint then reloads its optimizer state (Keras builds it over
        # the loaded model's trainable variables), and with `use_ema` the
        # averages that `fit` writes into `model.trainable_weights` at the
        # end line up with the variables they track.
        set_trainable_groups(
            self.backbone,
            self._scheduled_groups(),
            train_batchnorm=self.train_batchnorm,
        )

    def _prepare(self):
        """Builds the optimizer over every variable the schedule may train."""
        model_vars = {id(v) for v in self.model.weights}
        if not any(id(v) in model_vars for v in self.backbone.model.weights):
            raise ValueError(
                f"The model {self.model.name!r} does not use the weights of "
                f"backbone {self.backbone.name!r}: pass the Backbone whose "
                "`.model` is nested in the model being fit."
            )
        set_trainable_groups(
            self.backbone,
            self._scheduled_groups(),
            train_batchnorm=self.train_batchnorm,
        )
        self._applied = None
        replaced = _optimizer_state.prepare(
            self.model, self.model.trainable_variables
        )
        if replaced or self.model.train_function is not None:
            self.model.make_train_function(force=True)

    def _should_print(self):
        if self.verbose == "auto":
            # `fit` passes its own verbosity to every callback in `params`.
            return bool((self.params or {}).get("verbose", 1))
        return bool(self.verbose)

    # === Config ===

    def get_config(self):
        """The constructor's plain arguments; the backbone is not included."""
        return {
            "schedule": self.schedule,
            "learning_rates": self.learning_rates,
            "train_batchnorm": self.train_batchnorm,
            "verbose": self.verbose,
        }

    @classmethod
    def from_config(cls, config):
        if "backbone" not in config:
            raise ValueError(
                "ProgressiveUnfreeze configs do not hold the backbone. Pass it "
                "in: ProgressiveUnfreeze.from_config({**config, 'backbone': "
                f"backbone}}). Received config keys: {sorted(config)}"
            )
        return cls(**config)

