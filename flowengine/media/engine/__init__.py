"""The media engine under the elements: hubs (fan-out), shared transcoding, aiortc tracks and ICE
settings. Elements in :mod:`flowengine.media.elements` use it; it knows nothing of Kurento."""
