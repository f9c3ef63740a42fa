"""Finishing a recording: the fragmented mp4 written during the run becomes a plain mp4 with the
input video's sound.

While recording, the file is fragmented (a fragment a second), so a run killed outright still
leaves every complete fragment playable. A fragmented file has no index of its frames, though:
players must scan it to seek, and its header reports no frame count. At close it is remuxed
(packets copied, nothing re-encoded) into a regular mp4 with the video's audio track: copied when
its codec fits mp4 (AAC, MP3, ...), else re-encoded to AAC; trimmed to the recorded frames. The new
file replaces the old one only once it is complete, so a failure here keeps the fragmented one.
"""

from __future__ import annotations

import heapq
import os
from fractions import Fraction
from pathlib import Path

from emoview.realtime.files import replacing

MP4_AUDIO = {"aac", "mp3", "mp3float", "alac", "ac3", "eac3", "opus"}  # copied as they are
ENCODED_AUDIO = "aac"  # anything else becomes this


def finalize_mp4(path: str | os.PathLike, audio_from: str | os.PathLike | None, frames: int, fps: float) -> bool:
    """Rewrite `path` as a plain mp4, with `audio_from`'s first audio track if it has one.

    `frames` at `fps` is the recorded duration: audio past it (a run stopped early) is left out.
    Returns True if the file now carries sound.
    """
    import av

    path = Path(path)
    with replacing(path) as tmp:
        with av.open(str(path)) as recorded, av.open(str(tmp), mode="w", format="mp4") as out:
            video_in = recorded.streams.video[0]
            video_out = out.add_stream_from_template(video_in)
            audio = _open_audio(audio_from)
            try:
                streams = [_packets(recorded, video_in, video_out)]
                if audio is not None:
                    streams.append(_audio_packets(audio, out, frames / fps))
                for _, packet in heapq.merge(*streams, key=lambda item: item[0]):
                    out.mux(packet)
            finally:
                if audio is not None:
                    audio.close()
    return audio is not None


def _open_audio(source: str | os.PathLike | None):
    import av

    if source is None:
        return None
    try:
        container = av.open(str(source))
    except (av.FFmpegError, OSError):
        return None
    if not container.streams.audio:
        container.close()
        return None
    return container


def _seconds(packet) -> float:
    stamp = packet.dts if packet.dts is not None else packet.pts
    return float(stamp * packet.time_base)


def _packets(container, stream_in, stream_out):
    """(time, packet) of one stream, copied; in decoding order."""
    for packet in container.demux(stream_in):
        if packet.dts is None:  # the demuxer's end-of-stream marker
            continue
        packet.stream = stream_out
        yield _seconds(packet), packet


def _audio_packets(container, out, duration_s: float):
    """(time, packet) of the input's first audio track up to `duration_s`, copied or as AAC."""
    audio_in = container.streams.audio[0]
    start = float(container.streams.video[0].start_time * container.streams.video[0].time_base) if (
        container.streams.video and container.streams.video[0].start_time is not None
    ) else 0.0
    if audio_in.codec_context.name in MP4_AUDIO:
        audio_out = out.add_stream_from_template(audio_in)
        for packet in container.demux(audio_in):
            if packet.dts is None:
                continue
            when = _seconds(packet) - start
            if when >= duration_s:
                break
            if when < 0:
                continue
            shift = int(round(start / audio_in.time_base)) if start else 0
            packet.pts -= shift
            packet.dts -= shift
            packet.stream = audio_out
            yield when, packet
        return
    rate = audio_in.codec_context.sample_rate or 48000
    audio_out = out.add_stream(ENCODED_AUDIO, rate=rate)
    audio_out.layout = "mono" if audio_in.codec_context.channels == 1 else "stereo"  # AAC's common layouts
    for frame in container.decode(audio_in):
        when = float(frame.pts * frame.time_base) - start if frame.pts is not None else 0.0
        if when >= duration_s:
            break
        if when < 0:
            continue
        frame.pts = int(round(when * rate))
        frame.time_base = Fraction(1, rate)
        for packet in audio_out.encode(frame):
            yield _seconds(packet), packet
    for packet in audio_out.encode(None):
        yield _seconds(packet), packet
