"""A training run's whole configuration: a recipe (TOML in train/recipes/) plus command-line overrides.

Everything that changes a result lives here, is written to the run folder as config.json and is
compared on resume, so a run folder always describes exactly how its model was made.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from emoview.realtime.errors import InputError
from emoview.train.augment import Motion

RECIPES = Path(__file__).with_name("recipes")

# The settings that name one of a few choices, checked when the recipe is read (after --set), so a
# typo is refused in one line before minutes of data loading, not at the first epoch.
CHOICES = {
    "inputs": ("both", "landmarks", "blendshapes", "crop"),
    "autocast": ("", "bf16"),
    "mix": ("", "mixup", "cutmix"),
}


@dataclass
class Source:
    """One dataset folder and what it is used for.

    kind   images (<root>/<class>/<file>) | videos (labels.csv + clips) | ravdess | afewva
    role   train | val (the metric early stopping watches) | split (split by subject into train
           and a hold-out that is reported separately; the hold-out is the val set if no source
           has role val)
    """

    name: str
    kind: str
    path: str  # relative to --data
    role: str = "train"
    weight: float = 1.0  # how often its items are drawn per epoch, relative to their count
    holdout: float = 0.2  # share of subjects held out (role split)
    # folder | ferplus (FER+ majority) | blend (folder and FER+ votes, 50/50) | votes (the FER+ vote
    # distribution as a soft target, plurality as the class) | plurality (FER+ plurality: what
    # `emoview eval --labels ferplus` scores; ties and non-emotions are left out and counted)
    labels: str = "folder"
    drop: list[str] = field(default_factory=list)  # classes to leave out (e.g. CK+ contempt)
    rename: dict[str, str] = field(default_factory=dict)  # e.g. RAVDESS calm -> neutral


@dataclass
class SpecConfig:
    layout: str = "mp478"
    dims: int = 3
    align: str = "rigid3d"
    blendshapes: bool = True
    window: int = 15
    crop: int = 0  # aligned face crop side (0: a landmark-only model)
    embedding: int = 0  # crop embedding length


@dataclass
class CropAugment:
    """How training varies the face crops (fused models). Flips go with the landmark mirror."""

    rotate_deg: float = 10.0  # uniform +-
    scale: float = 0.1  # uniform 1 +- scale
    shift: float = 0.08  # uniform +-, in crop sides
    light: float = 0.3  # brightness and contrast, uniform 1 +- light
    blur: float = 0.2  # share of crops blurred (3x3 Gaussian)
    erase: float = 0.5  # share of crops with a random rectangle erased (hands, hair)


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    noise: float = 0.01  # Gaussian noise added to every feature, in feature units
    mirror: float = 0.5  # probability of mirroring a training window
    class_weight_power: float = 0.5  # loss weight per class = (count / mean count) ** -power
    patience: int = 8  # epochs without a better val macro-F1 before stopping
    seed: int = 0  # weights' initialisation, batch order and augmentation
    # which subjects a "split" source holds out (-1: `seed`); runs meant to be averaged into one
    # model (`emoview export RUN RUN`) share it and differ in `seed`, so no member saw a held-out face
    split_seed: int = -1
    full_window_prob: float = 0.7  # other batches use a random shorter window (the runtime's start)
    short_window_max: int = 0  # longest of those shorter windows; 0 = window - 1
    val_window: int = 0  # frames per validation window; 0 = the spec's window (`emoview eval` uses 1)
    stride: int = 5  # sliding-window stride for real sequences
    inputs: str = "both"  # both | landmarks | blendshapes | crop (a fused model's crop alone): ablation mask inside the model
    # two-stage training of a fused model: start the crop encoder from this run's checkpoint (a
    # best.pt path) and keep it frozen, so only the landmark and temporal layers learn
    encoder_from: str = ""
    encoder_lr: float = 0.0  # with encoder_from: the encoder's learning rate as a share of lr (0 = frozen)
    epoch_size: int = 0  # windows per epoch; 0 = as many as there are training items
    ema: float = 0.0  # decay of an exponential moving average of the weights (0 = off); the average is what is validated and kept
    autocast: str = ""  # "bf16": train in bfloat16 autocast (2.3x faster for the crop CNN on CPUs with AVX512-BF16)
    mix: str = ""  # "mixup" | "cutmix": mix each training item with another of its batch (`train.mixing`); "" = off
    mix_alpha: float = 0.2  # with mix: the mixing weight is Beta(mix_alpha, mix_alpha)

    def __post_init__(self) -> None:
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                shown = ", ".join(repr(a) for a in allowed)
                raise InputError(f"[train] {name} must be one of {shown}, not {getattr(self, name)!r}")
        if self.mix and self.mix_alpha <= 0:
            raise InputError(f"[train] mix_alpha must be above 0 with mix = {self.mix!r}, not {self.mix_alpha}")

    @property
    def holdout_seed(self) -> int:
        return self.seed if self.split_seed < 0 else self.split_seed


@dataclass
class Recipe:
    name: str
    description: str
    labels: list[str]
    sources: list[Source]
    spec: SpecConfig = field(default_factory=SpecConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    motion: Motion = field(default_factory=Motion)
    crops: CropAugment = field(default_factory=CropAugment)
    model: dict = field(default_factory=dict)  # ModelConfig overrides
    clusters: str = ""  # afewva: a saved VAClusters json to reuse instead of fitting

    def to_dict(self) -> dict:
        return asdict(self)


def _build(cls, data: dict, where: str):
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise InputError(f"{where}: unknown settings {sorted(unknown)}; known: {sorted(known)}")
    return cls(**data)


def recipe_from_dict(data: dict, where: str = "recipe") -> Recipe:
    data = dict(data)
    data["sources"] = [_build(Source, s, f"{where} [[sources]]") for s in data.get("sources", [])]
    data["spec"] = _build(SpecConfig, data.get("spec", {}), f"{where} [spec]")
    data["train"] = _build(TrainConfig, data.get("train", {}), f"{where} [train]")
    data["motion"] = _build(Motion, data.get("motion", {}), f"{where} [motion]")
    data["crops"] = _build(CropAugment, data.get("crops", {}), f"{where} [crops]")
    recipe = _build(Recipe, data, where)
    if not recipe.sources:
        raise InputError(f"{where} lists no [[sources]]")
    return recipe


def available() -> list[str]:
    return sorted(p.stem for p in RECIPES.glob("*.toml"))


def load_recipe(name_or_path: str) -> Recipe:
    """A built-in recipe by name, or a TOML file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = RECIPES / f"{name_or_path}.toml"
    if not path.is_file():
        raise InputError(f"no recipe {name_or_path!r}; built-in recipes: {', '.join(available())}, or pass a .toml file")
    with open(path, "rb") as handle:
        try:
            return recipe_from_dict(tomllib.load(handle), str(path))
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{path} is not valid TOML ({exc})") from None


def spec_of(recipe: Recipe):
    """The runtime feature spec a recipe's model is trained on (and shipped with)."""
    from emoview.realtime.spec import FeatureSpec, SpecError

    try:
        return FeatureSpec(labels=tuple(recipe.labels), **asdict(recipe.spec))
    except SpecError as exc:
        raise InputError(f"recipe {recipe.name}: bad [spec] ({exc})") from None
