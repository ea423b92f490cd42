"""Two annotators' reviews of the same model's detections, side by side.

Images are matched by their key (the hash of their bytes), detections by index (both reviews store the
same model's detections at their thresholds; a detection only one review holds is not compared). Two
verdicts on a detection agree when they are of the same kind, name the same class (wrong_class), and
their corrected boxes overlap with IoU >= ``iou`` (bad_box). Drawn boxes agree when they pair up greedily
by IoU >= ``iou`` with the same class. A detection judged by only one annotator is *unmatched*, not a
disagreement. Agreement per class counts against the class the model said (drawn boxes: their own).
"""

from __future__ import annotations

from .store import ReviewStore, Verdict


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else (1.0 if a == b else 0.0)


def _same(a: Verdict, b: Verdict, thr: float) -> bool:
    if a.kind != b.kind:
        return False
    if a.kind == "wrong_class":
        return a.class_id == b.class_id
    if a.kind == "bad_box":
        return a.class_id == b.class_id and iou(a.box, b.box) >= thr
    return True


def _pair_missed(a: list[Verdict], b: list[Verdict], thr: float):
    pairs = sorted(((iou(x.box, y.box), i, j) for i, x in enumerate(a) for j, y in enumerate(b)
                    if x.class_id == y.class_id), reverse=True)
    used_a, used_b, matched = set(), set(), []
    for o, i, j in pairs:
        if o < thr or i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        matched.append((a[i], b[j]))
    return matched, [x for i, x in enumerate(a) if i not in used_a], [y for j, y in enumerate(b) if j not in used_b]


def compare(a: ReviewStore, b: ReviewStore, *, iou_threshold: float = 0.5) -> dict:
    """``{"a", "b", "same_model", "images_compared", "classes": [{"class_id", "class", "compared", "agreed",
    "agreement"}], "overall": {...}, "kappa", "disagreements": [{"image", "key", "items": [...]}]}``."""
    ca, cb = a.all_current(), b.all_current()
    keys_b = set(b.image_keys())
    common = [k for k in a.image_keys() if k in keys_b]
    per: dict[int, dict] = {}
    pairs_kinds: list[tuple[str, str]] = []
    disagreements = []

    def row(cid):
        return per.setdefault(int(cid), {"class_id": int(cid), "class": a.class_name(cid) or b.class_name(cid),
                                         "compared": 0, "agreed": 0, "only_a": 0, "only_b": 0})

    for key in common:
        va, vb = ca.get(key, {}), cb.get(key, {})
        ima, imb = a.image(key), b.image(key)
        dets_b = {d.index: d for d in imb.detections}
        items = []
        for d in ima.detections:
            if d.index not in dets_b or dets_b[d.index].class_id != d.class_id:
                continue
            x, y = va.get(f"d{d.index}"), vb.get(f"d{d.index}")
            r = row(d.class_id)
            if x is None and y is None:
                continue
            if x is None or y is None:
                r["only_a" if y is None else "only_b"] += 1
                continue
            r["compared"] += 1
            pairs_kinds.append((x.kind, y.kind))
            if _same(x, y, iou_threshold):
                r["agreed"] += 1
            else:
                items.append({"target": f"d{d.index}", "class": a.class_name(d.class_id), "box": list(d.box),
                              "a": _brief(a, x), "b": _brief(b, y)})
        ma = [v for t, v in va.items() if t.startswith("m")]
        mb = [v for t, v in vb.items() if t.startswith("m")]
        matched, left_a, left_b = _pair_missed(ma, mb, iou_threshold)
        for x, _ in matched:
            r = row(x.class_id)
            r["compared"] += 1
            r["agreed"] += 1
            pairs_kinds.append(("missed", "missed"))
        for side, left, store in (("a", left_a, a), ("b", left_b, b)):
            for v in left:
                r = row(v.class_id)
                r["compared"] += 1
                pairs_kinds.append(("missed", "none") if side == "a" else ("none", "missed"))
                items.append({"target": "missed", "class": store.class_name(v.class_id), "box": list(v.box),
                              "a": _brief(a, v) if side == "a" else None, "b": _brief(b, v) if side == "b" else None})
        sa, sb = va.get("image"), vb.get("image")
        if sa is not None and sb is not None and sa.kind != sb.kind:
            items.append({"target": "image", "a": _brief(a, sa), "b": _brief(b, sb)})
        if items:
            disagreements.append({"image": ima.name, "key": key, "items": items})
    classes = []
    for cid in sorted(per):
        r = per[cid]
        r["agreement"] = round(r["agreed"] / r["compared"], 4) if r["compared"] else None
        classes.append(r)
    compared = sum(r["compared"] for r in classes)
    agreed = sum(r["agreed"] for r in classes)
    return {"a": {"path": str(a.path), "annotators": sorted({v.annotator for v in a.history()})},
            "b": {"path": str(b.path), "annotators": sorted({v.annotator for v in b.history()})},
            "same_model": (a.model.fingerprint, a.model.checkpoint) == (b.model.fingerprint, b.model.checkpoint),
            "images_compared": len(common), "images_only_a": len(a.image_keys()) - len(common),
            "images_only_b": len(keys_b) - len(common),
            "overall": {"compared": compared, "agreed": agreed,
                        "agreement": round(agreed / compared, 4) if compared else None},
            "kappa": _kappa(pairs_kinds), "classes": classes, "disagreements": disagreements}


def _brief(store: ReviewStore, v: Verdict) -> dict:
    out = {"kind": v.kind, "annotator": v.annotator, "at": v.at}
    if v.class_id is not None:
        out["class_id"] = v.class_id
        out["class"] = store.class_name(v.class_id)
    if v.box is not None:
        out["box"] = list(v.box)
    if v.comment:
        out["comment"] = v.comment
    return out


def _kappa(pairs: list[tuple[str, str]]) -> float | None:
    """Cohen's kappa over the verdict kinds of the items both judged (None when undefined)."""
    n = len(pairs)
    if not n:
        return None
    po = sum(1 for x, y in pairs if x == y) / n
    kinds = {k for p in pairs for k in p}
    pe = sum((sum(1 for x, _ in pairs if x == k) / n) * (sum(1 for _, y in pairs if y == k) / n) for k in kinds)
    return None if pe >= 1 else round((po - pe) / (1 - pe), 4)
