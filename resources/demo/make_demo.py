#!/usr/bin/env python
"""Regenerate detscope's bundled demo model zoo in ``resources/demo/``.

What it does, start to finish (seeded, CPU only, a few minutes on 2 cores):

1. draws a synthetic shape-detection dataset (filled circles, squares,
   triangles, stars and crosses of varied size/colour/rotation, some overlap,
   on cluttered backgrounds: gradients, low-frequency colour noise, blurred
   blobs, random lines, pixel noise) at several non-square image sizes;
2. pretrains a small CenterNet-style detector (tf_keras, output stride 4,
   class-heatmap / box-size / offset heads) on the 4-class *pretraining* set
   (circle, square, triangle, star) -- that checkpoint lives in a temp dir;
3. fine-tunes it the way Object Detection API users do: a new model with a
   *different* class set (circle, triangle, cross: 3 classes, "cross" is new,
   squares and stars now appear as unlabeled distractors), restoring only the
   feature extractor from the pretrained checkpoint (the class head has a new
   shape and is freshly initialised), writing ``training/ckpt-N`` checkpoints
   with ``tf.train.CheckpointManager``;
4. exports ``saved_model/`` with the TF2 OD API serving contract
   (``serving_default``: uint8 ``input_tensor`` [1, H, W, 3] ->
   detection_boxes / scores / classes / num_detections /
   detection_multiclass_scores), plus ``label_map.pbtxt`` and
   ``pipeline.config``;
5. writes a held-out test set (``test/images`` PNG+JPG with Pascal VOC XML
   beside each image, ``test/annotations.json`` in COCO format), reloads the
   exported SavedModel, evaluates it with faster-coco-eval and writes
   ``metrics.json``.

Run from the repository root::

    .venv/bin/python resources/demo/make_demo.py

Everything in resources/demo except this script and README.md is deleted and
rewritten.  Nothing is written outside resources/demo except temp dirs.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import json
import math
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from xml.sax.saxutils import escape

import cv2
import numpy as np
import tensorflow as tf
import tf_keras

L = tf_keras.layers

# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------
SEED = 1234
NUM_THREADS = 2

DEMO_DIR = Path(__file__).resolve().parent
KEEP = {"make_demo.py", "README.md"}

INPUT_SIZE = 160            # fixed internal resolution (fixed_shape_resizer)
STRIDE = 4                  # output stride -> 40x40 heatmaps
OUT_SIZE = INPUT_SIZE // STRIDE
MAX_DETECTIONS = 100
SCORE_THRESHOLD = 0.05      # rows below this are zero padding
IMAGE_SIZES = [(240, 320), (320, 256), (300, 300), (256, 320), (320, 240),
               (288, 288)]  # (height, width)
OBJ_MIN, OBJ_MAX = 14, 80   # object extent in original-image pixels

PRETRAIN_CLASSES = ["circle", "square", "triangle", "star"]
FINETUNE_CLASSES = ["circle", "triangle", "cross"]
FINETUNE_DISTRACTORS = ["square", "star"]   # drawn but not labelled
DISPLAY_NAMES = {"circle": "Circle", "triangle": "Triangle", "cross": "Cross",
                 "square": "Square", "star": "Star"}

N_PRETRAIN_IMAGES = 2400
N_FINETUNE_IMAGES = 2400
N_TEST_IMAGES = 36
BATCH_SIZE = 32
PRETRAIN_STEPS = 1000
FINETUNE_STEPS = 1000
NUM_CHECKPOINT_SAVES = 5     # CheckpointManager keeps the last 3
LEARNING_RATE = 3e-3
WARMUP_STEPS = 100


def set_seeds(seed):
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    tf_keras.utils.set_random_seed(seed)


def log(msg):
    print(msg, flush=True)


# --------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------
def make_background(rng, h, w):
    """Gradient + low-frequency colour noise + blurred blobs + lines + noise."""
    c0 = rng.uniform(30, 225, 3)
    c1 = rng.uniform(30, 225, 3)
    ang = rng.uniform(0, 2 * np.pi)
    t = (np.arange(w, dtype=np.float32)[None, :] * np.float32(np.cos(ang))
         + np.arange(h, dtype=np.float32)[:, None] * np.float32(np.sin(ang)))
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = (c0.astype(np.float32)[None, None, :]
           + (c1 - c0).astype(np.float32)[None, None, :] * t[..., None])

    # low-frequency colour noise
    gh, gw = rng.integers(3, 8), rng.integers(3, 8)
    grid = rng.uniform(-45, 45, (gh, gw, 3)).astype(np.float32)
    img += cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)

    # soft blobs
    blobs = np.zeros((h, w, 3), np.float32)
    mask = np.zeros((h, w), np.float32)
    for _ in range(rng.integers(2, 7)):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(10, 60)), int(rng.integers(10, 60)))
        colour = tuple(float(v) for v in rng.uniform(0, 255, 3))
        cv2.ellipse(blobs, centre, axes, float(rng.uniform(0, 180)), 0, 360,
                    colour, -1)
        cv2.ellipse(mask, centre, axes, 0, 0, 360, 1.0, -1)
    k = int(rng.integers(4, 10)) * 2 + 1
    blobs = cv2.GaussianBlur(blobs, (k, k), 0)
    mask = cv2.GaussianBlur(mask, (k, k), 0)[..., None] * rng.uniform(0.3, 0.6)
    img = img * (1 - mask) + blobs * mask

    img = np.clip(img, 0, 255).astype(np.uint8)
    # random thin lines and a few arcs
    for _ in range(rng.integers(3, 11)):
        p0 = (int(rng.integers(-20, w + 20)), int(rng.integers(-20, h + 20)))
        p1 = (int(rng.integers(-20, w + 20)), int(rng.integers(-20, h + 20)))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.line(img, p0, p1, colour, int(rng.integers(1, 3)), cv2.LINE_AA)
    for _ in range(rng.integers(0, 3)):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        r = int(rng.integers(15, 70))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        a0 = float(rng.uniform(0, 360))
        cv2.ellipse(img, centre, (r, r), 0, a0, a0 + float(rng.uniform(40, 200)),
                    colour, 1, cv2.LINE_AA)
    return img


def shape_polygon(kind, cx, cy, size, rot):
    """Float polygon (N, 2) for a shape whose extent is roughly ``size``."""
    r = size / 2.0
    if kind == "square":
        a = r / math.sqrt(2.0) * 1.0
        base = [(-a, -a), (a, -a), (a, a), (-a, a)]
        # enlarge so the (slightly rotated) square spans ~size
        base = [(x * 1.3, y * 1.3) for x, y in base]
        pts = base
    elif kind == "triangle":
        pts = [(r * math.cos(t), r * math.sin(t))
               for t in (-math.pi / 2, -math.pi / 2 + 2 * math.pi / 3,
                         -math.pi / 2 + 4 * math.pi / 3)]
    elif kind == "star":
        pts = []
        for i in range(10):
            rad = r if i % 2 == 0 else r * 0.45
            t = -math.pi / 2 + i * math.pi / 5
            pts.append((rad * math.cos(t), rad * math.sin(t)))
    elif kind == "cross":
        a = r * 0.34
        pts = [(-a, -r), (a, -r), (a, -a), (r, -a), (r, a), (a, a), (a, r),
               (-a, r), (-a, a), (-r, a), (-r, -a), (-a, -a)]
    else:
        raise ValueError(kind)
    c, s = math.cos(rot), math.sin(rot)
    return np.array([(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts],
                    np.float64)


def contrasting_colour(rng, patch_mean):
    best, best_d = None, -1.0
    for _ in range(12):
        hsv = np.array([[[rng.integers(0, 180), rng.integers(120, 256),
                          rng.integers(90, 256)]]], np.uint8)
        col = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float64)
        if rng.random() < 0.15:  # occasional dark / greyish objects
            col = rng.uniform(0, 90, 3) if rng.random() < 0.5 else \
                np.full(3, rng.uniform(0, 255))
        d = float(np.linalg.norm(col - patch_mean))
        if d > best_d:
            best, best_d = col, d
        if d > 90:
            break
    return tuple(int(v) for v in best)


def box_iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return inter / float(area_a + area_b - inter), inter / float(min(area_a, area_b))


def draw_scene(rng, labelled, distractors=(), distractor_prob=0.0):
    """Returns (image uint8 HxWx3 RGB, [(class_name, x0, y0, x1, y1)])."""
    h, w = IMAGE_SIZES[int(rng.integers(len(IMAGE_SIZES)))]
    img = make_background(rng, h, w)
    boxes, objects = [], []
    n = int(rng.integers(1, 8))
    for _ in range(n):
        is_distractor = distractors and rng.random() < distractor_prob
        kind = (distractors[int(rng.integers(len(distractors)))] if is_distractor
                else labelled[int(rng.integers(len(labelled)))])
        for _attempt in range(20):
            size = float(np.exp(rng.uniform(np.log(OBJ_MIN), np.log(OBJ_MAX))))
            half = size / 2 + 3
            cx = rng.uniform(half, w - half)
            cy = rng.uniform(half, h - half)
            if kind == "circle":
                rr = max(int(round(size / 2)), 5)
                icx, icy = int(round(cx)), int(round(cy))
                box = (icx - rr, icy - rr, icx + rr + 1, icy + rr + 1)
                pts = None
            else:
                rot = rng.uniform(-0.35, 0.35) if kind in ("square", "cross") \
                    else rng.uniform(-np.pi, np.pi)
                pts = np.round(shape_polygon(kind, cx, cy, size, rot)).astype(np.int32)
                box = (int(pts[:, 0].min()), int(pts[:, 1].min()),
                       int(pts[:, 0].max()) + 1, int(pts[:, 1].max()) + 1)
            if box[0] < 0 or box[1] < 0 or box[2] > w or box[3] > h:
                continue
            ok = True
            for b in boxes:
                iou, cover = box_iou(box, b)
                if iou > 0.25 or cover > 0.45:
                    ok = False
                    break
            if not ok:
                continue
            patch = img[box[1]:box[3], box[0]:box[2]].reshape(-1, 3).mean(0)
            colour = contrasting_colour(rng, patch)
            outline = rng.random() < 0.4
            if kind == "circle":
                cv2.circle(img, (icx, icy), rr, colour, -1, cv2.LINE_AA)
                if outline:
                    cv2.circle(img, (icx, icy), rr,
                               tuple(int(v * 0.4) for v in colour), 1, cv2.LINE_AA)
            else:
                cv2.fillPoly(img, [pts], colour, cv2.LINE_AA)
                if outline:
                    cv2.polylines(img, [pts], True,
                                  tuple(int(v * 0.4) for v in colour), 1,
                                  cv2.LINE_AA)
            boxes.append(box)
            if not is_distractor:
                objects.append((kind, *box))
            break
    # sensor noise over everything
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    noise *= np.float32(rng.uniform(1.5, 5.0))
    img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    return img, objects


def make_targets(objects, h, w, class_names):
    """CenterNet targets on the OUT_SIZE grid for one (resized) image."""
    nc = len(class_names)
    heat = np.zeros((OUT_SIZE, OUT_SIZE, nc), np.float32)
    reg = np.zeros((OUT_SIZE, OUT_SIZE, 5), np.float32)  # h, w, dy, dx, mask
    ys, xs = np.mgrid[0:OUT_SIZE, 0:OUT_SIZE].astype(np.float32)
    sy, sx = OUT_SIZE / h, OUT_SIZE / w
    for kind, x0, y0, x1, y1 in objects:
        c = class_names.index(kind)
        bh, bw = (y1 - y0) * sy, (x1 - x0) * sx
        cy, cx = (y0 + y1) / 2 * sy, (x0 + x1) / 2 * sx
        iy, ix = min(int(cy), OUT_SIZE - 1), min(int(cx), OUT_SIZE - 1)
        sig_y, sig_x = max(0.5, 0.54 * bh / 6), max(0.5, 0.54 * bw / 6)
        g = np.exp(-((xs - ix) ** 2 / (2 * sig_x ** 2) + (ys - iy) ** 2 / (2 * sig_y ** 2)))
        heat[..., c] = np.maximum(heat[..., c], g)
        heat[iy, ix, c] = 1.0
        reg[iy, ix] = (bh, bw, cy - iy, cx - ix, 1.0)
    return heat, reg


def resize_for_model(img):
    """Same resize as the exported model's preprocess (bilinear, TF)."""
    t = tf.image.resize(tf.convert_to_tensor(img[None], tf.float32),
                        (INPUT_SIZE, INPUT_SIZE), method="bilinear")
    return np.clip(np.round(t[0].numpy()), 0, 255).astype(np.uint8)


def build_dataset(rng, n, labelled, distractors=(), distractor_prob=0.0):
    images = np.zeros((n, INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
    heats = np.zeros((n, OUT_SIZE, OUT_SIZE, len(labelled)), np.float32)
    regs = np.zeros((n, OUT_SIZE, OUT_SIZE, 5), np.float32)
    n_obj = 0
    for i in range(n):
        img, objects = draw_scene(rng, labelled, distractors, distractor_prob)
        if rng.random() < 0.5:   # JPEG artefacts like real-world inputs
            q = int(rng.integers(60, 96))
            ok, buf = cv2.imencode(".jpg", img[..., ::-1],
                                   [cv2.IMWRITE_JPEG_QUALITY, q])
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
        h, w = img.shape[:2]
        images[i] = resize_for_model(img)
        heats[i], regs[i] = make_targets(objects, h, w, labelled)
        n_obj += len(objects)
    return images, heats, regs, n_obj


# --------------------------------------------------------------------------
# Model (tf_keras, subclassed so checkpoint keys carry meaningful names)
# --------------------------------------------------------------------------
class ConvBNReLU(L.Layer):
    def __init__(self, filters, kernel_size=3, strides=1, name=None):
        super().__init__(name=name)
        self.conv = L.Conv2D(filters, kernel_size, strides, padding="same",
                             use_bias=False, name="conv")
        self.bn = L.BatchNormalization(momentum=0.95, epsilon=1e-3, name="bn")

    def call(self, x, training=False):
        return tf.nn.relu6(self.bn(self.conv(x), training=training))


class FeatureExtractor(tf_keras.Model):
    """Tiny conv backbone (strides 2..16) with a top-down FPN back to stride 4."""

    def __init__(self, name="feature_extractor"):
        super().__init__(name=name)
        self.stem = ConvBNReLU(16, 3, 2, name="stem")              # /2
        self.stage1_down = ConvBNReLU(24, 3, 2, name="stage1_down")  # /4
        self.stage1_conv = ConvBNReLU(24, 3, 1, name="stage1_conv")
        self.stage2_down = ConvBNReLU(48, 3, 2, name="stage2_down")  # /8
        self.stage2_conv = ConvBNReLU(48, 3, 1, name="stage2_conv")
        self.stage3_down = ConvBNReLU(64, 3, 2, name="stage3_down")  # /16
        self.stage3_conv = ConvBNReLU(64, 3, 1, name="stage3_conv")
        self.lateral3 = L.Conv2D(48, 1, name="lateral3")
        self.fuse2 = ConvBNReLU(48, 3, 1, name="fuse2")
        self.lateral2 = L.Conv2D(32, 1, name="lateral2")
        self.lateral1 = L.Conv2D(32, 1, name="lateral1")
        self.fuse1 = ConvBNReLU(32, 3, 1, name="fuse1")
        self.upsample = L.UpSampling2D(2, interpolation="nearest", name="upsample")

    def call(self, x, training=False):
        x = self.stem(x, training=training)
        c1 = self.stage1_conv(self.stage1_down(x, training=training), training=training)
        c2 = self.stage2_conv(self.stage2_down(c1, training=training), training=training)
        c3 = self.stage3_conv(self.stage3_down(c2, training=training), training=training)
        p2 = self.fuse2(c2 + self.upsample(self.lateral3(c3)), training=training)
        p1 = self.fuse1(self.lateral1(c1) + self.upsample(self.lateral2(p2)),
                        training=training)
        return p1


class PredictionHead(L.Layer):
    def __init__(self, out_channels, bias_init=0.0, name=None):
        super().__init__(name=name)
        self.conv = L.Conv2D(32, 3, padding="same", activation="relu", name="conv")
        self.out = L.Conv2D(out_channels, 1, name="out",
                            bias_initializer=tf_keras.initializers.Constant(bias_init))

    def call(self, x):
        return self.out(self.conv(x))


class CenterNetDetector(tf_keras.Model):
    """CenterNet-style detector: class heatmaps, box size and centre offset."""

    def __init__(self, num_classes, name="center_net"):
        super().__init__(name=name)
        self.num_classes = num_classes
        self.feature_extractor = FeatureExtractor()
        self.class_head = PredictionHead(num_classes, bias_init=-2.19,
                                         name="class_head")
        self.box_head = PredictionHead(2, name="box_head")          # h, w
        self.offset_head = PredictionHead(2, name="offset_head")    # dy, dx

    def preprocess(self, images):
        """float32 [B, H, W, 3] in 0..255 -> resized, scaled to [-1, 1]."""
        images = tf.image.resize(images, (INPUT_SIZE, INPUT_SIZE), method="bilinear")
        return images / 127.5 - 1.0

    def call(self, x, training=False):
        feats = self.feature_extractor(x, training=training)
        return {
            "object_center": self.class_head(feats),
            "box_scale": self.box_head(feats),
            "box_offset": self.offset_head(feats),
        }

    def postprocess(self, prediction_dict, max_detections=MAX_DETECTIONS,
                    score_threshold=SCORE_THRESHOLD):
        heat = tf.sigmoid(prediction_dict["object_center"])          # [B,h,w,C]
        shape = tf.shape(heat)
        b, oh, ow, nc = shape[0], shape[1], shape[2], shape[3]
        pooled = tf.nn.max_pool2d(heat, 3, 1, "SAME")
        peaks = heat * tf.cast(tf.equal(heat, pooled), heat.dtype)
        scores, idx = tf.math.top_k(tf.reshape(peaks, [b, -1]), k=max_detections)
        classes = idx % nc
        pix = idx // nc
        ys = tf.cast(pix // ow, tf.float32)
        xs = tf.cast(pix % ow, tf.float32)
        size = tf.gather(tf.reshape(prediction_dict["box_scale"], [b, -1, 2]),
                         pix, batch_dims=1)
        off = tf.gather(tf.reshape(prediction_dict["box_offset"], [b, -1, 2]),
                        pix, batch_dims=1)
        cy, cx = ys + off[..., 0], xs + off[..., 1]
        bh, bw = tf.nn.relu(size[..., 0]), tf.nn.relu(size[..., 1])
        ohf, owf = tf.cast(oh, tf.float32), tf.cast(ow, tf.float32)
        boxes = tf.stack([(cy - bh / 2) / ohf, (cx - bw / 2) / owf,
                          (cy + bh / 2) / ohf, (cx + bw / 2) / owf], axis=-1)
        boxes = tf.clip_by_value(boxes, 0.0, 1.0)
        class_scores = tf.gather(tf.reshape(heat, [b, -1, nc]), pix, batch_dims=1)
        background = 1.0 - tf.reduce_max(class_scores, axis=-1, keepdims=True)
        multiclass = tf.concat([background, class_scores], axis=-1)

        valid = scores >= score_threshold                       # sorted => prefix
        num = tf.reduce_sum(tf.cast(valid, tf.float32), axis=1)
        vf = tf.cast(valid, tf.float32)
        return {
            "detection_boxes": boxes * vf[..., None],
            "detection_scores": scores * vf,
            "detection_classes": (tf.cast(classes, tf.float32) + 1.0) * vf,
            "num_detections": num,
            "detection_multiclass_scores": multiclass * vf[..., None],
        }


class DetectionInferenceModule(tf.Module):
    """Export module mirroring the TF2 OD API exporter: the detection model is
    tracked as ``_model`` so training checkpoints (root child ``model``) map
    onto the SavedModel's ``_model``."""

    def __init__(self, detection_model):
        super().__init__()
        self._model = detection_model

    @tf.function(input_signature=[
        tf.TensorSpec([1, None, None, 3], tf.uint8, name="input_tensor")])
    def __call__(self, input_tensor):
        images = tf.cast(input_tensor, tf.float32)
        preprocessed = self._model.preprocess(images)
        prediction_dict = self._model(preprocessed, training=False)
        return self._model.postprocess(prediction_dict)


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------
def centernet_losses(pred, heat_gt, reg_gt):
    logits = pred["object_center"]
    p = tf.clip_by_value(tf.sigmoid(logits), 1e-4, 1 - 1e-4)
    pos = tf.cast(tf.equal(heat_gt, 1.0), tf.float32)
    num_pos = tf.maximum(tf.reduce_sum(pos), 1.0)
    pos_loss = tf.math.log(p) * tf.square(1 - p) * pos
    neg_loss = tf.math.log(1 - p) * tf.square(p) * tf.pow(1 - heat_gt, 4) * (1 - pos)
    focal = -(tf.reduce_sum(pos_loss) + tf.reduce_sum(neg_loss)) / num_pos
    mask = reg_gt[..., 4:5]
    size_loss = tf.reduce_sum(tf.abs(pred["box_scale"] - reg_gt[..., 0:2]) * mask) / num_pos
    off_loss = tf.reduce_sum(tf.abs(pred["box_offset"] - reg_gt[..., 2:4]) * mask) / num_pos
    return focal, size_loss, off_loss


def augment_batch(rng, imgs, heats, regs):
    """Flips (with offset fix-up), channel permutation, brightness/contrast."""
    imgs = imgs.astype(np.float32)
    heats = heats.copy()
    regs = regs.copy()
    for i in range(len(imgs)):
        if rng.random() < 0.5:      # horizontal flip
            imgs[i] = imgs[i, :, ::-1]
            heats[i] = heats[i, :, ::-1]
            regs[i] = regs[i, :, ::-1]
            m = regs[i, ..., 4]
            regs[i, ..., 3] = np.where(m > 0, 1.0 - regs[i, ..., 3], 0.0)
        if rng.random() < 0.5:      # vertical flip
            imgs[i] = imgs[i, ::-1]
            heats[i] = heats[i, ::-1]
            regs[i] = regs[i, ::-1]
            m = regs[i, ..., 4]
            regs[i, ..., 2] = np.where(m > 0, 1.0 - regs[i, ..., 2], 0.0)
        imgs[i] = imgs[i][..., rng.permutation(3)]
        imgs[i] = (imgs[i] - 128.0) * rng.uniform(0.75, 1.25) + 128.0 + \
            rng.uniform(-25, 25)
    imgs = np.clip(imgs, 0, 255) / 127.5 - 1.0
    return imgs, heats, regs


def train(model, optimizer, data, steps, rng, step_var, tag,
          on_step_end=None):
    images, heats, regs = data
    n = len(images)

    @tf.function(jit_compile=False)
    def train_step(x, hg, rg):
        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            focal, size_l, off_l = centernet_losses(pred, hg, rg)
            loss = focal + 0.1 * size_l + off_l
        grads = tape.gradient(loss, model.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, 10.0)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        step_var.assign_add(1)
        return focal, size_l, off_l

    order = rng.permutation(n)
    pos = 0
    t0 = time.time()
    acc = np.zeros(3)
    for step in range(1, steps + 1):
        if pos + BATCH_SIZE > n:
            order, pos = rng.permutation(n), 0
        idx = np.sort(order[pos:pos + BATCH_SIZE])
        pos += BATCH_SIZE
        x, hg, rg = augment_batch(rng, images[idx], heats[idx], regs[idx])
        losses = train_step(tf.constant(x, tf.float32), tf.constant(hg),
                            tf.constant(rg))
        acc += [float(v) for v in losses]
        if step % 100 == 0 or step == steps:
            k = 100 if step % 100 == 0 else step % 100
            log(f"  [{tag}] step {step:5d}/{steps}  focal {acc[0] / k:.3f}  "
                f"size {acc[1] / k:.3f}  offset {acc[2] / k:.3f}  "
                f"lr {float(optimizer._decayed_lr(tf.float32)):.2e}  "
                f"({time.time() - t0:.0f}s)")
            acc[:] = 0
        if on_step_end is not None:
            on_step_end(step)


class WarmupCosine(tf_keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, base, total, warmup):
        self.base, self.total, self.warmup = base, total, warmup

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = self.base * step / self.warmup
        cos = 0.5 * self.base * (1 + tf.cos(np.pi * tf.minimum(
            (step - self.warmup) / max(self.total - self.warmup, 1), 1.0)))
        return tf.where(step < self.warmup, warm, cos)

    def get_config(self):
        return {"base": self.base, "total": self.total, "warmup": self.warmup}


def make_optimizer(total_steps):
    # Legacy (Keras 2 "v1"-style) Adam: slot variables are saved as
    # `<var>/.OPTIMIZER_SLOT/optimizer/{m,v}` like the OD API model zoo.
    return tf_keras.optimizers.legacy.Adam(
        WarmupCosine(LEARNING_RATE, total_steps, WARMUP_STEPS), epsilon=1e-7)


# --------------------------------------------------------------------------
# Outputs: label map, pipeline config, test set, evaluation
# --------------------------------------------------------------------------
def write_label_map(path, classes):
    lines = []
    for i, name in enumerate(classes, start=1):
        lines += ["item {", f"  id: {i}", f'  name: "{name}"',
                  f'  display_name: "{DISPLAY_NAMES[name]}"', "}"]
    path.write_text("\n".join(lines) + "\n")


def write_pipeline_config(path, pretrain_ckpt_name):
    nc = len(FINETUNE_CLASSES)
    text = f"""# CenterNet-style demo detector made by make_demo.py (detscope).
# TF2 Object Detection API text format; the feature extractor type is custom.
model {{
  center_net {{
    num_classes: {nc}
    feature_extractor {{
      type: "detscope_tiny_fpn"
      channel_means: [127.5, 127.5, 127.5]
      channel_stds: [127.5, 127.5, 127.5]
      bgr_ordering: false
    }}
    image_resizer {{
      fixed_shape_resizer {{
        height: {INPUT_SIZE}
        width: {INPUT_SIZE}
      }}
    }}
    object_center_params {{
      object_center_loss_weight: 1.0
      classification_loss {{
        penalty_reduced_logistic_focal_loss {{
          alpha: 2.0
          beta: 4.0
        }}
      }}
      min_box_overlap_iou: 0.7
      max_box_predictions: {MAX_DETECTIONS}
    }}
    object_detection_task {{
      task_loss_weight: 1.0
      offset_loss_weight: 1.0
      scale_loss_weight: 0.1
      localization_loss {{
        l1_localization_loss {{
        }}
      }}
    }}
  }}
}}
train_config {{
  batch_size: {BATCH_SIZE}
  num_steps: {FINETUNE_STEPS}
  data_augmentation_options {{
    random_horizontal_flip {{
    }}
  }}
  data_augmentation_options {{
    random_vertical_flip {{
    }}
  }}
  data_augmentation_options {{
    random_adjust_brightness {{
    }}
  }}
  data_augmentation_options {{
    random_adjust_contrast {{
    }}
  }}
  optimizer {{
    adam_optimizer {{
      learning_rate {{
        cosine_decay_learning_rate {{
          learning_rate_base: {LEARNING_RATE}
          total_steps: {FINETUNE_STEPS}
          warmup_learning_rate: 0.0
          warmup_steps: {WARMUP_STEPS}
        }}
      }}
      epsilon: 1e-07
    }}
    use_moving_average: false
  }}
  fine_tune_checkpoint: "pretrain/{pretrain_ckpt_name}"
  fine_tune_checkpoint_type: "detection"
  fine_tune_checkpoint_version: V2
  max_number_of_boxes: 100
  unpad_groundtruth_tensors: false
}}
train_input_reader {{
  label_map_path: "label_map.pbtxt"
  tf_record_input_reader {{
    input_path: "train.record"
  }}
}}
eval_config {{
  metrics_set: "coco_detection_metrics"
  use_moving_averages: false
  batch_size: 1
}}
eval_input_reader {{
  label_map_path: "label_map.pbtxt"
  shuffle: false
  num_epochs: 1
  tf_record_input_reader {{
    input_path: "test.record"
  }}
}}
"""
    path.write_text(text)


def write_voc_xml(path, file_name, w, h, objects):
    parts = ["<annotation>", "  <folder>images</folder>",
             f"  <filename>{escape(file_name)}</filename>",
             "  <size>", f"    <width>{w}</width>", f"    <height>{h}</height>",
             "    <depth>3</depth>", "  </size>", "  <segmented>0</segmented>"]
    for kind, x0, y0, x1, y1 in objects:
        parts += ["  <object>", f"    <name>{escape(kind)}</name>",
                  "    <pose>Unspecified</pose>", "    <truncated>0</truncated>",
                  "    <difficult>0</difficult>", "    <bndbox>",
                  f"      <xmin>{x0}</xmin>", f"      <ymin>{y0}</ymin>",
                  f"      <xmax>{x1}</xmax>", f"      <ymax>{y1}</ymax>",
                  "    </bndbox>", "  </object>"]
    parts.append("</annotation>")
    path.write_text("\n".join(parts) + "\n")


def write_test_set(rng, test_dir):
    img_dir = test_dir / "images"
    img_dir.mkdir(parents=True)
    coco = {
        "info": {"description": "detscope synthetic demo test set",
                 "version": "1.0"},
        "licenses": [],
        "images": [], "annotations": [],
        "categories": [{"id": i, "name": n, "supercategory": "shape"}
                       for i, n in enumerate(FINETUNE_CLASSES, start=1)],
    }
    ann_id = 1
    for i in range(N_TEST_IMAGES):
        img, objects = None, []
        while not objects:
            img, objects = draw_scene(rng, FINETUNE_CLASSES, FINETUNE_DISTRACTORS, 0.25)
        h, w = img.shape[:2]
        ext = "png" if i % 3 == 0 else "jpg"
        name = f"shapes_{i:03d}.{ext}"
        bgr = img[..., ::-1]
        if ext == "png":
            cv2.imwrite(str(img_dir / name), bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        else:
            cv2.imwrite(str(img_dir / name), bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
        write_voc_xml(img_dir / f"shapes_{i:03d}.xml", name, w, h, objects)
        coco["images"].append({"id": i + 1, "file_name": name, "width": w,
                               "height": h})
        for kind, x0, y0, x1, y1 in objects:
            bw, bh = x1 - x0, y1 - y0
            coco["annotations"].append({
                "id": ann_id, "image_id": i + 1,
                "category_id": FINETUNE_CLASSES.index(kind) + 1,
                "bbox": [x0, y0, bw, bh], "area": bw * bh, "iscrowd": 0})
            ann_id += 1
    (test_dir / "annotations.json").write_text(json.dumps(coco, indent=1) + "\n")
    return coco


def evaluate_saved_model(saved_model_dir, test_dir):
    from faster_coco_eval import COCO, COCOeval_faster

    loaded = tf.saved_model.load(str(saved_model_dir))
    fn = loaded.signatures["serving_default"]
    gt = json.loads((test_dir / "annotations.json").read_text())
    results = []
    for im in gt["images"]:
        bgr = cv2.imread(str(test_dir / "images" / im["file_name"]), cv2.IMREAD_COLOR)
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        h, w = rgb.shape[:2]
        assert (h, w) == (im["height"], im["width"])
        out = fn(input_tensor=tf.constant(rgb[None], tf.uint8))
        n = int(out["num_detections"][0])
        boxes = out["detection_boxes"][0, :n].numpy()
        scores = out["detection_scores"][0, :n].numpy()
        classes = out["detection_classes"][0, :n].numpy()
        for (y0, x0, y1, x1), s, c in zip(boxes, scores, classes):
            results.append({
                "image_id": im["id"], "category_id": int(round(c)),
                "bbox": [float(x0 * w), float(y0 * h),
                         float((x1 - x0) * w), float((y1 - y0) * h)],
                "score": float(s)})
    coco_gt = COCO(str(test_dir / "annotations.json"))
    coco_dt = coco_gt.loadRes(results)
    ev = COCOeval_faster(coco_gt, coco_dt, iouType="bbox", print_function=print)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return {"mAP@[.5:.95]": float(ev.stats[0]), "mAP@0.5": float(ev.stats[1]),
            "mAP@0.75": float(ev.stats[2]), "num_test_images": len(gt["images"]),
            "num_test_objects": len(gt["annotations"]),
            "num_detections_evaluated": len(results)}


def verify_export_matches_checkpoint(saved_model_dir, ckpt_path):
    """The exported weights must equal the latest training checkpoint.

    The SavedModel tracks the detector as ``_model``; the checkpoint as
    ``model``.  Variable names (``center_net/<attr path>:0``) follow the
    attribute paths because every layer is named after its attribute."""
    loaded = tf.saved_model.load(str(saved_model_dir))
    reader = tf.train.load_checkpoint(str(ckpt_path))
    checked = 0
    for v in loaded._model.variables:
        path = v.name.split(":")[0].split("/", 1)[1]
        key = f"model/{path}/.ATTRIBUTES/VARIABLE_VALUE"
        if not np.array_equal(reader.get_tensor(key), v.numpy()):
            raise AssertionError(f"exported {v.name} differs from {key}")
        checked += 1
    log(f"verified: {checked} exported variables equal {Path(ckpt_path).name}")
    return checked


def clean_outputs():
    for child in DEMO_DIR.iterdir():
        if child.name in KEEP or child.name == "__pycache__":
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def count_params(model):
    return int(sum(int(np.prod(v.shape)) for v in model.trainable_variables))


def main():
    t_start = time.time()
    tf.config.threading.set_intra_op_parallelism_threads(NUM_THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(NUM_THREADS)
    tf.config.experimental.enable_op_determinism()
    set_seeds(SEED)
    clean_outputs()

    ss = np.random.SeedSequence(SEED)
    rng_pre, rng_ft, rng_test, rng_aug = [np.random.default_rng(s)
                                          for s in ss.spawn(4)]

    # ---- data ----
    t0 = time.time()
    pre_data = build_dataset(rng_pre, N_PRETRAIN_IMAGES, PRETRAIN_CLASSES)
    ft_data = build_dataset(rng_ft, N_FINETUNE_IMAGES, FINETUNE_CLASSES,
                            FINETUNE_DISTRACTORS, 0.25)
    log(f"data: {N_PRETRAIN_IMAGES} pretrain images ({pre_data[3]} objects), "
        f"{N_FINETUNE_IMAGES} fine-tune images ({ft_data[3]} objects) "
        f"in {time.time() - t0:.0f}s")

    tmp = Path(tempfile.mkdtemp(prefix="detscope_demo_"))
    try:
        # ---- pretrain ----
        set_seeds(SEED + 1)
        model = CenterNetDetector(len(PRETRAIN_CLASSES))
        model(tf.zeros([1, INPUT_SIZE, INPUT_SIZE, 3]))
        log(f"pretrain model: {count_params(model)} trainable params "
            f"({model.count_params()} total)")
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        opt = make_optimizer(PRETRAIN_STEPS)
        train(model, opt, pre_data[:3], PRETRAIN_STEPS, rng_aug, step, "pretrain")
        pre_ckpt = tf.train.Checkpoint(model=model, optimizer=opt, step=step)
        pre_path = pre_ckpt.save(str(tmp / "pretrain" / "ckpt"))
        pre_ckpt_name = Path(pre_path).name
        log(f"pretrained checkpoint: {pre_path}")
        del model, opt, pre_ckpt, pre_data

        # ---- fine-tune ----
        set_seeds(SEED + 2)
        model = CenterNetDetector(len(FINETUNE_CLASSES))
        model(tf.zeros([1, INPUT_SIZE, INPUT_SIZE, 3]))
        n_params = count_params(model)
        log(f"fine-tune model: {n_params} trainable params "
            f"({model.count_params()} total)")
        # OD API "detection" fine-tune: restore the feature extractor only.
        restore = tf.train.Checkpoint(
            model=tf.train.Checkpoint(feature_extractor=model.feature_extractor))
        restore.restore(pre_path).assert_existing_objects_matched().expect_partial()
        log("restored feature_extractor from the pretrained checkpoint "
            "(class/box/offset heads freshly initialised)")

        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        opt = make_optimizer(FINETUNE_STEPS)
        ckpt = tf.train.Checkpoint(model=model, optimizer=opt, step=step)
        manager = tf.train.CheckpointManager(ckpt, str(DEMO_DIR / "training"),
                                             max_to_keep=3, checkpoint_name="ckpt")
        every = FINETUNE_STEPS // NUM_CHECKPOINT_SAVES
        saved = []

        def maybe_save(s):
            if s % every == 0 or s == FINETUNE_STEPS:
                if not saved or saved[-1][0] != s:
                    saved.append((s, manager.save()))

        train(model, opt, ft_data[:3], FINETUNE_STEPS, rng_aug, step, "finetune",
              on_step_end=maybe_save)
        for s, p in saved:
            log(f"  saved {Path(p).name} at step {s}")
        latest = manager.latest_checkpoint
        log(f"latest checkpoint: {latest}")
        del ft_data
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # ---- export ----
    module = DetectionInferenceModule(model)
    concrete = module.__call__.get_concrete_function()
    saved_model_dir = DEMO_DIR / "saved_model"
    tf.saved_model.save(module, str(saved_model_dir),
                        signatures={"serving_default": concrete})
    assets = saved_model_dir / "assets"
    if assets.is_dir() and not any(assets.iterdir()):
        assets.rmdir()   # git does not keep empty folders; keep the tree as committed
    log(f"exported {saved_model_dir}")
    verify_export_matches_checkpoint(saved_model_dir, latest)

    write_label_map(DEMO_DIR / "label_map.pbtxt", FINETUNE_CLASSES)
    write_pipeline_config(DEMO_DIR / "pipeline.config", pre_ckpt_name)

    # ---- test set + evaluation of the exported model ----
    coco = write_test_set(rng_test, DEMO_DIR / "test")
    log(f"test set: {len(coco['images'])} images, {len(coco['annotations'])} objects")
    metrics = evaluate_saved_model(saved_model_dir, DEMO_DIR / "test")
    wall = time.time() - t_start
    metrics.update({
        "seed": SEED,
        "classes": FINETUNE_CLASSES,
        "pretrain_classes": PRETRAIN_CLASSES,
        "trainable_params": n_params,
        "input_size": [INPUT_SIZE, INPUT_SIZE],
        "pretrain_steps": PRETRAIN_STEPS,
        "finetune_steps": FINETUNE_STEPS,
        "latest_checkpoint": Path(latest).name,
        "score_threshold": SCORE_THRESHOLD,
        "evaluator": "faster_coco_eval COCOeval_faster (bbox)",
    })
    (DEMO_DIR / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log(f"COCO mAP@0.5 = {metrics['mAP@0.5']:.4f}   "
        f"mAP@[.5:.95] = {metrics['mAP@[.5:.95]']:.4f}")
    log(f"total wall time: {wall:.1f}s")
    if metrics["mAP@0.5"] < 0.7:
        log("WARNING: mAP@0.5 below the 0.7 target")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
