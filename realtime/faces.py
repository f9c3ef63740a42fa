"""Faces from frames: MediaPipe FaceLandmarker (478 landmarks + 52 blendshapes per face).

Video and camera frames use VIDEO mode, where MediaPipe tracks faces between frames instead of
searching every frame. Stills use IMAGE mode; tiny crops (FER2013's 48x48) are enlarged and framed
first, because the detector misses about one face in nine at their native size.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emoview.realtime.cores import threads_started
from emoview.realtime.errors import ModelError
from emoview.realtime.signals import deferring_signals
from emoview.realtime.spec import N_BLENDSHAPES

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if not os.environ.get("EMOVIEW_DEBUG"):
    # OpenCV's FFmpeg prints demuxer/decoder complaints ("moov atom not found", "error while
    # decoding MB") straight to fd 2; we report damaged files ourselves in one line. -8 is
    # AV_LOG_QUIET; OpenCV reads it when its FFmpeg backend first opens a file.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


_quiet = threading.Lock()
_quiet_depth = 0  # quiet blocks open now, in any thread: fd 2 is restored when the last one ends
_real_stderr = -1  # a copy of fd 2 while it points at /dev/null


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence MediaPipe's C++ start-up chatter (glog/absl/TFLite write straight to fd 2).

    Only wraps model loading, the first inference and closing; Python errors still surface as
    exceptions. fd 2 is the process's: blocks in several threads (the discovery thread readies a
    landmarker while a finder starts) share one redirection, so the last to end restores it.
    """
    global _quiet_depth, _real_stderr
    if os.environ.get("EMOVIEW_DEBUG"):
        yield
        return
    with _quiet:
        if _quiet_depth == 0:
            _real_stderr = _silence_fd2()
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _real_stderr >= 0:
                os.dup2(_real_stderr, 2)
                os.close(_real_stderr)
                _real_stderr = -1


def _silence_fd2() -> int:
    """fd 2 to /dev/null; a copy of what it was (-1: left as it was, e.g. out of descriptors)."""
    try:
        saved = os.dup(2)
    except OSError:
        return -1
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
    except OSError:
        os.close(saved)
        return -1
    return saved


def mediapipe_tasks():
    """MediaPipe's task API, `(BaseOptions, vision)`, imported with stop signals deferred.

    The import pulls in matplotlib (for MediaPipe's drawing utilities); a Ctrl-C landing while
    matplotlib's compiled font module started left it half made, and the process then aborted
    as it exited ("Fatal Python error: PyThreadState_Get") instead of exiting 130. The wait is
    the import's, about a second, once per process.
    """
    with deferring_signals():
        from mediapipe.tasks.python import BaseOptions, vision
    return BaseOptions, vision


@contextlib.contextmanager
def native_start(close):
    """The start-up of a MediaPipe task (create, warm up): quiet, and whole or closed.

    A Ctrl-C acts once the block is done (`deferring_signals`): raised as MediaPipe's create call
    returns, or before the caller holds the task, it left a running graph that nobody closed, whose
    threads logged over our last line. On any error or interrupt, `close()` runs, quietly too.
    """
    try:
        with deferring_signals(), quiet_native_stderr():
            yield
    except BaseException:
        with quiet_native_stderr():
            close()
        raise


@dataclass
class Face:
    """One detected face. `points` are isotropic pixels: x*width, y*height, z*width."""

    points: np.ndarray  # (478, 3) float32
    blendshapes: np.ndarray  # (52,) float32
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels of the analysed frame


class FaceLandmarker:
    """A MediaPipe FaceLandmarker that returns `Face` objects; use as a context manager."""

    def __init__(
        self,
        model_path: str | os.PathLike,
        max_faces: int = 1,
        video: bool = True,
        min_confidence: float = 0.5,
    ) -> None:
        BaseOptions, vision = mediapipe_tasks()
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model_path)),
            running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
            num_faces=max_faces,
            min_face_detection_confidence=min_confidence,
            min_face_presence_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
            output_face_blendshapes=True,
        )
        self._landmarker = None
        self._lock = threading.Lock()  # one call at a time: inference, or closing
        self._video = video
        self._last_ts = 0  # the warm-up frame uses timestamp 0
        try:
            with native_start(self.close), threads_started() as started:
                self._started = started  # filled as the block ends, still inside `native_start`
                self._landmarker = vision.FaceLandmarker.create_from_options(options)
                self._warm_up(video)
                self._direct = _DirectResults.bind(self._landmarker, video)
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"MediaPipe cannot load face model {model_path}: {exc}") from None

    @property
    def graph_threads(self) -> frozenset[int]:
        """MediaPipe's threads for this landmarker (`cores.CoreSplit`)."""
        return frozenset(self._started)

    def _warm_up(self, video: bool) -> None:
        """One inference on a blank frame, so first-call logs and allocations happen here, quietly."""
        import mediapipe as mp

        blank = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((64, 64, 3), dtype=np.uint8))
        if video:
            self._landmarker.detect_for_video(blank, 0)
        else:
            self._landmarker.detect(blank)

    def detect(self, bgr: np.ndarray, timestamp_ms: int | None = None, image=None) -> list[Face]:
        """Faces in a BGR frame (`image`: the same frame already made into an `mp.Image` by
        `to_mp_image`, if at hand). In video mode, timestamps must grow; equal ones are nudged."""
        image = to_mp_image(bgr) if image is None else image
        ts = None
        if self._video:
            ts = max(int(timestamp_ms or 0), self._last_ts + 1)
            self._last_ts = ts
        height, width = bgr.shape[:2]
        return [_to_face(marks, shapes, width, height) for marks, shapes in self.infer(image, ts)]

    @property
    def readout(self) -> str:
        """How results leave MediaPipe: "direct" (C arrays) or "objects" (its Python API)."""
        return "objects" if self._direct is None else "direct"

    def infer(self, image, ts: int | None) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """MediaPipe alone on a prepared `mp.Image`: per face, (478, 3) normalized landmarks and
        (52,) blendshape scores (or None). The benchmark's floor times exactly this."""
        with self._lock:
            if self._landmarker is None:
                raise RuntimeError("this face landmarker is closed")
            return self._direct(image, ts) if self._direct is not None else self._via_objects(image, ts)

    def _via_objects(self, image, ts: int | None) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """MediaPipe's public call: one Python object per landmark, read back into arrays."""
        if self._video:
            result = self._landmarker.detect_for_video(image, ts)
        else:
            result = self._landmarker.detect(image)
        shapes = result.face_blendshapes or [None] * len(result.face_landmarks)
        return [
            (
                np.array([(m.x, m.y, m.z) for m in marks], dtype=np.float32),
                np.array([c.score for c in scores], dtype=np.float32) if scores else None,
            )
            for marks, scores in zip(result.face_landmarks, shapes)
        ]

    def close(self) -> None:
        with self._lock:
            if self._landmarker is not None:
                self._landmarker.close()
                self._landmarker = None

    def __enter__(self) -> "FaceLandmarker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def to_mp_image(bgr: np.ndarray):
    """The RGB `mp.Image` MediaPipe takes, from an OpenCV BGR (or grey) frame."""
    import mediapipe as mp

    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
    return mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)


class _DirectResults:
    """Calls MediaPipe's C entry point in the calling thread and reads its result as numpy arrays.

    MediaPipe's Python API costs a live pipeline twice. Each call is handed to a private one-thread
    executor and back (two thread switches, each waiting for the GIL that the pipeline's other
    threads hold), and each result becomes a Python object per landmark and blendshape (measured:
    1.2 ms per face against 0.17 ms for reading the same C arrays). Our landmarker is only ever
    called from one thread at a time (its lock makes sure), which is all that executor guarantees.
    The C signatures and structs are MediaPipe's own ctypes declarations; a MediaPipe without them
    gets the public call.
    """

    def __init__(self, landmarker, video: bool) -> None:
        from mediapipe.tasks.python.components.containers import category_c, landmark_c
        from mediapipe.tasks.python.core.mediapipe_c_utils import handle_status
        from mediapipe.tasks.python.vision.face_landmarker import MpFaceLandmarkerResultC

        raw = landmarker._lib._lib  # the ctypes.CDLL behind MediaPipe's dispatcher
        self._detect = getattr(raw, "MpFaceLandmarkerDetectForVideo" if video else "MpFaceLandmarkerDetectImage")
        if self._detect.restype is not ctypes.c_int or self._detect.argtypes[-1] is not ctypes.POINTER(ctypes.c_char_p):
            raise TypeError("unexpected MediaPipe C signature")
        self._close_result = raw.MpFaceLandmarkerCloseResult
        self._free_error = raw.MpErrorFree
        self._handle_status = handle_status
        self._handle = landmarker._handle
        self._video = video
        self._result_type = MpFaceLandmarkerResultC
        self._landmark_dtype = _float_fields(landmark_c.MpNormalizedLandmarkC, ("x", "y", "z"))
        self._category_dtype = _float_fields(category_c.MpCategoryC, ("score",))

    @classmethod
    def bind(cls, landmarker, video: bool) -> "_DirectResults | None":
        if os.environ.get("EMOVIEW_MEDIAPIPE_OBJECTS"):  # the public path, for comparison and debugging
            return None
        try:
            return cls(landmarker, video)
        except (ImportError, AttributeError, TypeError, IndexError):
            return None

    def __call__(self, image, ts: int | None) -> list[tuple[np.ndarray, np.ndarray | None]]:
        result = self._result_type()
        error = ctypes.c_char_p()
        if self._video:
            status = self._detect(self._handle, image._image_ptr, None, ts, ctypes.byref(result), ctypes.byref(error))
        else:
            status = self._detect(self._handle, image._image_ptr, None, ctypes.byref(result), ctypes.byref(error))
        try:
            self._handle_status(status, error)  # raises MediaPipe's own exception for a failed call
        finally:
            if error.value is not None:
                self._free_error(error)
        try:
            faces = []
            for i in range(result.face_landmarks_count):
                marks = result.face_landmarks[i]
                points = _read_array(marks.landmarks, marks.landmarks_count, self._landmark_dtype)
                shapes = None
                if i < result.face_blendshapes_count:
                    scores = result.face_blendshapes[i]
                    shapes = _read_array(scores.categories, scores.categories_count, self._category_dtype)[:, 0]
                faces.append((points, shapes))
            return faces
        finally:
            self._close_result(ctypes.byref(result))


def _float_fields(struct, names: tuple[str, ...]) -> np.dtype:
    """A numpy view of some float fields of a ctypes struct (its size and field offsets)."""
    for name in names:
        if dict(struct._fields_)[name] is not ctypes.c_float:
            raise TypeError(f"{struct.__name__}.{name} is not a float")
    offsets = [getattr(struct, name).offset for name in names]
    return np.dtype({"names": list(names), "formats": [np.float32] * len(names), "offsets": offsets, "itemsize": ctypes.sizeof(struct)})


def _read_array(pointer, count: int, dtype: np.dtype) -> np.ndarray:
    """(count, fields) float32 copied out of a C array (the C result is freed right after)."""
    if count == 0 or not pointer:
        return np.zeros((0, len(dtype.names)), dtype=np.float32)
    address = ctypes.cast(pointer, ctypes.c_void_p).value
    rows = np.frombuffer((ctypes.c_char * (dtype.itemsize * count)).from_address(address), dtype=dtype)
    return np.stack([rows[name] for name in dtype.names], axis=1).astype(np.float32, copy=False)


def _to_face(norm: np.ndarray, blend: np.ndarray | None, width: int, height: int) -> Face:
    points = norm * np.array([width, height, width], dtype=np.float32)
    if blend is None:
        blend = np.zeros(N_BLENDSHAPES, dtype=np.float32)
    return Face(points=points, blendshapes=blend, box=points_box(points, width, height))


def points_box(points: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """The box around a face's points, inside a width x height image."""
    x0, y0 = np.floor(points[:, :2].min(axis=0)).astype(int)
    x1, y1 = np.ceil(points[:, :2].max(axis=0)).astype(int)
    return max(int(x0), 0), max(int(y0), 0), min(int(x1), width - 1), min(int(y1), height - 1)


# -- stills ------------------------------------------------------------------------------------

SMALL_IMAGE = 128  # below this side length, a still is treated as a face crop and framed first
# (size px, border share), tried in order. The last three were chosen by trying 42 size/border
# settings on FER2013 images the first four miss (mostly profiles): they find 13 of the 46 missed
# val faces (98.70 % -> 99.07 %) and cost time only on images without a face.
CROP_ATTEMPTS = ((192, 0.30), (256, 0.50), (160, 0.15), (320, 0.80), (224, 1.20), (128, 0.00), (320, 0.30))
# then (size, border, degrees) with the framed crop turned: MediaPipe's detector misses heads tilted
# far to one side. On the 26 FER2013 val faces (FER+ labels) that every attempt above misses, these
# find 11 (99.22 % -> 99.55 %); again only images without a face pay for them.
TURNED_ATTEMPTS = tuple((size, border, angle) for angle in (20, -20, 40, -40) for size, border in ((192, 0.30), (256, 0.50)))


def frame_crop(image: np.ndarray, size: int, border: float) -> tuple[np.ndarray, float, int]:
    """Upscale a tiny face crop and pad it with its median grey, as the detector expects a scene.

    Returns the framed BGR image, the scale factor and the padding, to map boxes back.
    """
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    scale = size / max(grey.shape[:2])
    big = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    pad = int(round(size * border))
    fill = int(np.median(grey))
    framed = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=fill)
    return cv2.cvtColor(framed, cv2.COLOR_GRAY2BGR), scale, pad


def crop_around(image: np.ndarray, box, context: float, size: int) -> tuple[np.ndarray, float, tuple[float, float]]:
    """A size x size BGR cut-out centred on `box` (x0, y0, x1, y1), `context` times its longer side,
    black past the image's edge: a small face enlarged so the landmarker's detector sees it, as
    `frame_crop` does for 48x48 crops. Returns the cut-out, the scale and the (x, y) padding that
    `_unframe` takes to map faces back. Only the cut-out's pixels are computed, not the image's."""
    x0, y0, x1, y1 = box
    side = max(context * max(x1 - x0, y1 - y0), 1.0)
    scale = size / side
    pad = (-((x0 + x1) / 2 - side / 2) * scale, -((y0 + y1) / 2 - side / 2) * scale)
    matrix = np.array([[scale, 0.0, pad[0]], [0.0, scale, pad[1]]], dtype=np.float64)
    cut = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return cut, scale, pad


CROP_CONFIDENCE = 0.1  # framed crops: measured on FER2013/CK+, a low threshold finds the faces


# A face found by the tiled search gets its landmarks from a cut-out `AROUND_CONTEXT` times its
# box, AROUND_SIZE px square: there it spans about half the landmarker's view, which its detector
# finds at any score (measured: 0.9 from 1/1.3 to 1/7 of the view) and its landmark model sees
# at 96 px or more however small the face was in the photo.
AROUND_CONTEXT = 2.0
AROUND_SIZE = 256
AROUND_FACES = 3  # a group photo's cut-out holds neighbours too: the one matching the search's box is kept
SAME_FACE_IOU = 0.4  # two landmarked faces overlapping this much are one face found twice


class StillFaceFinder:
    """Faces in single images: photos by a tiled search (`face_search.FaceSearch`), then landmarks
    per face on a cut-out around it; tiny crops framed and retried until one is found.

    `min_confidence` applies to photos; framed crops always use CROP_CONFIDENCE. `min_face` (px) is
    the smallest face a photo is searched for: smaller means more tiles, so more time.
    """

    def __init__(self, model_path: str | os.PathLike, max_faces: int = 1, min_confidence: float = 0.5,
                 min_face: int | None = None) -> None:
        from emoview.realtime.face_search import MIN_FACE, FaceSearch

        self.max_faces = max_faces
        self._search = self._around = self._crop = None
        try:
            self._search = FaceSearch(model_path, min_face=min_face or MIN_FACE, min_confidence=min_confidence)
            self._around = FaceLandmarker(model_path, max_faces=AROUND_FACES, video=False, min_confidence=min_confidence)
            self._crop = FaceLandmarker(model_path, max_faces=1, video=False, min_confidence=CROP_CONFIDENCE)
        except BaseException:
            self.close()
            raise

    def find(self, image: np.ndarray, prepared=None) -> list[Face]:
        """Faces in a BGR image (`prepared`: unused, for `FaceLandmarker.detect`'s signature)."""
        if max(image.shape[:2]) >= SMALL_IMAGE:
            return self.find_in_photo(image)
        for size, border, angle in [(size, border, 0) for size, border in CROP_ATTEMPTS] + list(TURNED_ATTEMPTS):
            framed, scale, pad = frame_crop(image, size, border)
            turn = cv2.getRotationMatrix2D((framed.shape[1] / 2, framed.shape[0] / 2), angle, 1.0) if angle else None
            faces = self._crop.detect(framed if turn is None else cv2.warpAffine(framed, turn, framed.shape[1::-1],
                                                                                  borderMode=cv2.BORDER_REPLICATE))
            if faces:
                return [_unframe(face if turn is None else _unturn(face, turn, framed.shape), scale, pad, image.shape)
                        for face in faces]
        return []

    def find_in_photo(self, image: np.ndarray) -> list[Face]:
        """Every face the tiled search finds (best score first, up to `max_faces`), each with the
        landmarks of a cut-out around it; a box whose cut-out shows no face was no face."""
        faces: list[Face] = []
        for box in self._search.find(image):
            if len(faces) >= self.max_faces:
                break
            face = landmarks_around(self._around, image, box.ints)
            if face is not None and all(iou(face.box, other.box) < SAME_FACE_IOU for other in faces):
                faces.append(face)
        return faces

    def detect(self, bgr: np.ndarray, timestamp_ms: int | None = None, image=None) -> list[Face]:
        """`FaceLandmarker.detect`'s signature, so an `Analyzer` in stills mode finds faces as
        `emoview predict` does (timestamps mean nothing to unrelated images)."""
        return self.find(bgr, image)

    def close(self) -> None:
        for part in (self._search, self._around, self._crop):
            if part is not None:
                part.close()

    def __enter__(self) -> "StillFaceFinder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def landmarks_around(landmarker: FaceLandmarker, image: np.ndarray, box, timestamp_ms: int | None = None,
                     context: float = AROUND_CONTEXT, size: int = AROUND_SIZE) -> Face | None:
    """The face at `box` in `image`, landmarked on a cut-out around it, in the image's pixels; None
    if the cut-out shows no face. Of several faces in the cut-out, the one nearest its centre (where
    `box` is) wins."""
    cut, scale, pad = crop_around(image, box, context, size)
    found = landmarker.detect(cut, timestamp_ms)
    if not found:
        return None
    centre = size / 2
    nearest = min(found, key=lambda f: abs((f.box[0] + f.box[2]) / 2 - centre) + abs((f.box[1] + f.box[3]) / 2 - centre))
    return _unframe(nearest, scale, pad, image.shape)


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _unturn(face: Face, turn: np.ndarray, shape: tuple[int, ...]) -> Face:
    """A face found in a turned image (`turn`: the 2x3 rotation applied to it), in the unturned image."""
    back = cv2.invertAffineTransform(turn)
    points = face.points.copy()
    points[:, :2] = face.points[:, :2] @ back[:, :2].T + back[:, 2]
    return Face(points=points, blendshapes=face.blendshapes, box=points_box(points, shape[1], shape[0]))


def _unframe(face: Face, scale: float, pad: float | tuple[float, float], shape: tuple[int, ...]) -> Face:
    """Map a face found in a framed or cut-out crop back to the pixels of the image it came from
    (crop pixel = image pixel * scale + pad; `pad` one number for both axes, or (x, y))."""
    pad_x, pad_y = (pad, pad) if np.isscalar(pad) else pad
    points = face.points.copy()
    points[:, 0] -= pad_x
    points[:, 1] -= pad_y
    points /= scale
    h, w = shape[:2]
    x0, y0, x1, y1 = face.box
    box = (
        max(int((x0 - pad_x) / scale), 0),
        max(int((y0 - pad_y) / scale), 0),
        min(int((x1 - pad_x) / scale), w - 1),
        min(int((y1 - pad_y) / scale), h - 1),
    )
    return Face(points=points, blendshapes=face.blendshapes, box=box)


def read_image(path: str | Path) -> np.ndarray | None:
    """A BGR image from disk, or None if the file is not a readable image."""
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        return None
    return cv2.imdecode(data, cv2.IMREAD_COLOR)
