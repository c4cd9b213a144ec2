"""Several media servers behind one Kurento endpoint (issue 15).

* :mod:`.router`: the Kurento-protocol front that places pipelines and forwards requests;
* :mod:`.backends`: the servers behind it, worker processes of ours and remote Kurento servers;
* :mod:`.upstream`: the router's WebSocket connections to them;
* :mod:`.relay`: a source's encoded media forwarded from one worker to another;
* :mod:`.front`: the router as a server (``flowrun media-server --workers N``).
"""
