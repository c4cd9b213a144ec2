"""``viewers.py --server-prelude bench/media/prelude_aiortc_sender.py``: the server without its
lean RTP send loop (``flowengine/media/engine/rtp_sender.py``), i.e. with aiortc's own
``RTCRtpSender._run_rtp`` for every viewer, as before the benchmark's fix ("before" figures)."""

from flowengine.media.engine import rtp_sender

rtp_sender.install = lambda sender: None
