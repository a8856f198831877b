"""The teacher's side, without Streamlit: lesson links, guided lessons, QR codes and the live class store.

- ``teaching.controls``: every control a lesson link can set, lock or hide, with its URL key (one table);
- ``teaching.links``: :class:`~teaching.links.LessonLink`, "a view a teacher hands out", to and from a URL;
- ``teaching.qr``: a link as a QR code (SVG or PNG);
- ``teaching.lessons``: lesson files (TOML), their validator and the lesson library;
- ``teaching.facts``: the figures a lesson states, measured on a model, so a lesson cannot say what is false;
- ``teaching.store``: the live class (join codes, answers, reveal), with its rules, over
  ``teaching.records`` and a backend: ``teaching.store_sqlite`` (default) or ``teaching.store_redis``;
- ``teaching.bounds``: every size, count and lifetime limit of the above, in one place.

The pages (``explorer/``, ``pages/``) import this package; it imports no Streamlit and nothing of theirs.
"""
