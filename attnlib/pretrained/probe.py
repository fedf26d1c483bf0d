r"""Pretraining, then specialising: a linear classifier on a *frozen* encoder's sentence embeddings.

The task is built from templates, so nothing downloads: every sentence mentions one thing of a
category (an animal, a food, a vehicle, a musical instrument) in the same carrier sentences
("We talked about the {} for an hour."). The words of the test sentences are **never seen in
training**, so the classifier can only succeed if the encoder already places *giraffe* near
*zebra*: knowledge from pretraining. The same classifier on an encoder with random weights (same
architecture) has nothing to go on. That control fails by construction; the informative one is
the pretrained word-embedding table alone, without attention
(:func:`attnlib.experiments.pretrained_encoder.probe_by_layer`).
"""
from __future__ import annotations

import torch
from torch import nn

from attnlib.checks import check_positive_count, check_real, check_text, check_torch_tensor
from attnlib.shapes import check_count

__all__ = ["CATEGORIES", "TEMPLATES", "template_task", "train_probe", "probe_accuracy", "frozen_probe"]

CATEGORIES = {
    "animal": ["dog", "cat", "horse", "cow", "lion", "tiger", "rabbit", "sheep", "monkey", "wolf",
               "giraffe", "zebra", "elephant", "kangaroo", "squirrel", "penguin"],
    "food": ["bread", "cheese", "apple", "soup", "pizza", "rice", "cake", "banana", "pasta", "salad",
             "sandwich", "omelette", "pancake", "burrito", "yoghurt", "noodles"],
    "vehicle": ["car", "bus", "truck", "bicycle", "train", "motorcycle", "taxi", "van", "tractor", "scooter",
                "ambulance", "limousine", "tram", "minibus", "helicopter", "jeep"],
    "instrument": ["piano", "guitar", "violin", "drum", "flute", "trumpet", "cello", "harp", "saxophone",
                   "clarinet", "banjo", "ukulele", "accordion", "oboe", "harmonica", "trombone"],
}
TEMPLATES = ["I saw the {} yesterday.", "We talked about the {} for an hour.", "There is a picture of the {}.",
             "My sister told me about the {}.", "Have you ever seen the {}?", "The {} was next to the door.",
             "Everyone was looking at the {}.", "He wrote a short story about the {}."]
N_TRAIN_WORDS = 10


def template_task() -> dict:
    """Sentences and labels; train and test use disjoint words (10 and 6 per category).

    Returns
    -------
    dict
        ``"train"`` and ``"test"``: each a tuple (list of str, torch.LongTensor of labels);
        ``"classes"``: the category names (label i is ``classes[i]``).
    """
    out = {"classes": list(CATEGORIES)}
    for split, words_of in (("train", lambda w: w[:N_TRAIN_WORDS]), ("test", lambda w: w[N_TRAIN_WORDS:])):
        sentences, labels = [], []
        for label, words in enumerate(CATEGORIES.values()):
            for word in words_of(words):
                for t in TEMPLATES:
                    sentences.append(t.format(word))
                    labels.append(label)
        out[split] = (sentences, torch.tensor(labels))
    return out


def train_probe(features: torch.Tensor, labels: torch.Tensor, num_classes: int, steps: int = 200,
                lr: float = 0.05, seed: int = 0, progress: bool = True, desc: str = "probe"):
    """Fit a linear classifier (softmax regression) with :func:`attnlib.torch.train`, full batch.

    Parameters
    ----------
    features : torch.Tensor, shape (N, E)
        Frozen sentence embeddings.
    labels : torch.LongTensor, shape (N,)
    num_classes : int
    steps : int
        Adam steps (fixed).
    lr : float
    seed : int
    progress : bool
    desc : str
        Label of the progress bar.

    Returns
    -------
    classifier : torch.nn.Linear
    history : attnlib.torch.History

    Raises
    ------
    ValueError
        For features that are not (N, E) floats, labels that are not N class indices in
        ``[0, num_classes)``, or counts and rates out of range.
    """
    from attnlib.torch import train

    num_classes = check_positive_count(num_classes, "num_classes")
    _check_features_labels(features, labels, num_classes)
    steps = check_count(steps, "steps")
    lr = check_real(lr, "lr", positive=True)
    seed = check_count(seed, "seed")
    check_text(desc, "desc")

    torch.manual_seed(seed)
    clf = nn.Linear(features.shape[1], num_classes)
    opt = torch.optim.Adam(clf.parameters(), lr=lr)
    loss_fn = lambda m, batch: nn.functional.cross_entropy(m(batch[0]), batch[1])  # noqa: E731
    history = train(clf, [(features, labels)], loss_fn, opt, steps=steps, clip=None, progress=progress,
                    desc=desc)
    return clf.eval(), history


def probe_accuracy(classifier: nn.Module, features: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``features`` (N, E) whose predicted class equals ``labels`` (N,).

    Returns
    -------
    float
    """
    if not callable(classifier):
        raise TypeError(f"classifier must be a module (from train_probe), got {type(classifier).__name__}")
    _check_features_labels(features, labels)
    if len(labels) == 0:
        raise ValueError("features and labels hold no example: the accuracy of nothing is undefined")
    with torch.no_grad():
        return float((classifier(features).argmax(-1) == labels).float().mean())


def frozen_probe(model, tokenizer, task: dict, steps: int = 200, progress: bool = True, desc: str = "probe") -> dict:
    """Embed the task's sentences with a frozen encoder, train the probe, measure it.

    Parameters
    ----------
    model : attnlib.pretrained.BertEncoder
        Pretrained or randomly initialised (its weights are not changed).
    tokenizer : attnlib.pretrained.WordPieceTokenizer
    task : dict
        From :func:`template_task`.
    steps : int
    progress : bool
    desc : str

    Returns
    -------
    dict
        ``"train_accuracy"``, ``"test_accuracy"`` (floats), ``"history"``, ``"classifier"``.
    """
    from attnlib.pretrained.minilm import sentence_embeddings

    if not isinstance(task, dict) or not {"train", "test", "classes"} <= set(task):
        raise ValueError(f"task must be the dict template_task() returns (keys 'train', 'test', 'classes'), "
                         f"got {type(task).__name__}" + (f" with keys {sorted(task)}" if isinstance(task, dict) else ""))
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an encoder such as attnlib.pretrained.BertEncoder, got {type(model).__name__}")
    steps = check_count(steps, "steps")
    model.eval()
    x_train, y_train = task["train"]
    x_test, y_test = task["test"]
    f_train = sentence_embeddings(x_train, model=model, tokenizer=tokenizer)
    f_test = sentence_embeddings(x_test, model=model, tokenizer=tokenizer)
    clf, history = train_probe(f_train, y_train, len(task["classes"]), steps=steps, progress=progress,
                               desc=desc)
    return {"train_accuracy": probe_accuracy(clf, f_train, y_train),
            "test_accuracy": probe_accuracy(clf, f_test, y_test), "history": history, "classifier": clf}


def _check_features_labels(features, labels, num_classes=None) -> None:
    """features (N, E) floating, labels (N,) integer class indices (below num_classes, if given)."""
    check_torch_tensor(features, "features", floating=True)
    check_torch_tensor(labels, "labels")
    if features.dim() != 2 or labels.dim() != 1 or len(labels) != len(features):
        raise ValueError(f"features must be (N, E) and labels (N,), got {tuple(features.shape)} and "
                         f"{tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must hold integer class indices (torch.long), got dtype {labels.dtype}: use "
                         f"labels.long()")
    if num_classes is not None and labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must be class indices in [0, num_classes={num_classes}), got labels from "
                         f"{int(labels.min())} to {int(labels.max())}")
    if features.device != labels.device:
        raise ValueError(f"labels is on {labels.device} but features on {features.device}: move it with "
                         f"labels.to('{features.device}')")
