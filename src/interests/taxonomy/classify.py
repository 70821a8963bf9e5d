"""The item classifier: item text vector -> global topic (and so domain), with a probability.

Trained on the items the profiles cite (labelled by the cluster of the
nodes that cite them, majority vote), applied to every catalogue item.
Multinomial logistic regression, kept as plain ``coef``/``intercept``
arrays so that a saved taxonomy needs no pickle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

C = 10.0  # inverse regularisation: unit-norm inputs need a weak penalty
HELD_OUT = 0.2


@dataclass
class TrainedClassifier:
    coef: np.ndarray  # [T, dim]
    intercept: np.ndarray  # [T]
    metrics: dict[str, float | int]


def _fit(x: np.ndarray, y: np.ndarray, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """coef [n_classes, dim] and intercept [n_classes]; classes absent from ``y`` get -inf-like bias."""
    from sklearn.linear_model import LogisticRegression

    coef = np.zeros((n_classes, x.shape[1]), dtype=np.float32)
    intercept = np.full(n_classes, -30.0, dtype=np.float32)
    present = np.unique(y)
    if len(present) == 1:
        intercept[present[0]] = 0.0
        return coef, intercept
    model = LogisticRegression(C=C, max_iter=2000, random_state=seed)
    model.fit(x, y)
    if len(present) == 2:  # sklearn keeps one row for two classes: P(1) = sigmoid(w.x + b)
        coef[present[1]] = model.coef_[0]
        intercept[present[0]] = 0.0
        intercept[present[1]] = model.intercept_[0]
    else:
        coef[present] = model.coef_
        intercept[present] = model.intercept_
    return coef, intercept


def predict_proba(coef: np.ndarray, intercept: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Topic probabilities [n, T] (softmax of the linear scores)."""
    logits = x.astype(np.float32) @ coef.T + intercept
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def decide(p: np.ndarray, topic_domain: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Domain = argmax of summed topic probabilities; topic = best topic inside it.

    Returns domain index, topic index, P(topic), P(domain) per row.
    """
    n_dom = int(topic_domain.max()) + 1 if len(topic_domain) else 0
    dom_p = np.zeros((len(p), n_dom), dtype=np.float32)
    for t, d in enumerate(topic_domain):
        dom_p[:, d] += p[:, t]
    dom = dom_p.argmax(axis=1)
    masked = np.where(topic_domain[None, :] == dom[:, None], p, -1.0)
    top = masked.argmax(axis=1)
    rows = np.arange(len(p))
    return dom, top, p[rows, top], dom_p[rows, dom]


def _predict(coef: np.ndarray, intercept: np.ndarray, x: np.ndarray, topic_domain: np.ndarray) -> np.ndarray:
    return decide(predict_proba(coef, intercept, x), topic_domain)[1]


def train_item_classifier(
    x: np.ndarray, topic: np.ndarray, topic_domain: np.ndarray, *, seed: int = 0
) -> TrainedClassifier:
    """Fit on all labelled items; accuracy measured on a stratified held-out 20% first."""
    n_classes = len(topic_domain)
    metrics: dict[str, float | int] = {"n_labelled_items": len(x)}
    counts = np.bincount(topic, minlength=n_classes)
    rng = np.random.default_rng(seed)
    test_mask = np.zeros(len(x), dtype=bool)
    for c in np.flatnonzero(counts >= 2):  # stratified: each class with >= 2 items gives ~20% to test
        idx = np.flatnonzero(topic == c)
        k = max(1, round(HELD_OUT * len(idx)))
        test_mask[rng.choice(idx, size=k, replace=False)] = True
    if test_mask.any() and (~test_mask).any():
        coef, intercept = _fit(x[~test_mask], topic[~test_mask], n_classes, seed)
        pred = _predict(coef, intercept, x[test_mask], topic_domain)
        truth = topic[test_mask]
        metrics["held_out_items"] = int(test_mask.sum())
        metrics["topic_accuracy"] = round(float((pred == truth).mean()), 4)
        metrics["domain_accuracy"] = round(float((topic_domain[pred] == topic_domain[truth]).mean()), 4)
    coef, intercept = _fit(x, topic, n_classes, seed)
    pred = _predict(coef, intercept, x, topic_domain)
    metrics["train_topic_accuracy"] = round(float((pred == topic).mean()), 4)
    return TrainedClassifier(coef, intercept, metrics)


__all__ = ["TrainedClassifier", "decide", "predict_proba", "train_item_classifier"]
