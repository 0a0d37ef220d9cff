#!/usr/bin/env python3
"""Back-port mpv >= 0.39's VapourSynth-API4 ``vf_vapoursynth.c`` to mpv 0.35.1.

Usage: adapt_vf_vapoursynth.py NEW_VF_VAPOURSYNTH_C OUT_C

NEW_VF_VAPOURSYNTH_C is ``video/filter/vf_vapoursynth.c`` taken from the
Debian trixie mpv source package (0.40.0, VapourSynth API4 / VSScript4).
OUT_C is written with the few places that rely on post-0.35 mpv internals
rewritten for mpv 0.35.1 (Debian bookworm):

* ``mp_mutex`` / ``mp_cond`` wrappers (osdep/threads.h, 0.38+) -> pthreads
* ``mp_assert`` -> ``assert``
* libplacebo colour fields (``params->repr.*``, ``pl_system_to_av``,
  ``pl_chroma_location``) -> 0.35's ``params->color`` / ``mp_csp_*``
* no ``mp_image_params.crop`` and no ``mp_stream_info.get_display_res`` in
  0.35 (the ``display_res`` script global is then always ``[0, 0]``).

plus one crash fix that upstream 0.40 also needs with VapourSynth >= R74:
``_MP_IMAGE`` is read with an error pointer, so output frames lacking that
property no longer abort mpv.

No mpv source is stored in this repository: the file is read from the Debian
source package at build time and only small search/replace strings live here.
Every edit must match exactly the expected number of times, otherwise the
script fails loudly (so a changed upstream file is noticed, not miscompiled).
"""

from __future__ import annotations

import re
import sys

# (description, regex, replacement, expected number of matches or None = >=1)
EDITS: list[tuple[str, str, str, int | None]] = [
    (
        "drop libplacebo include",
        r"^#include <libplacebo/utils/libav\.h>\n",
        "",
        1,
    ),
    (
        "osdep/threads.h (mp_mutex) -> pthread.h",
        r'^#include "osdep/threads\.h"\n',
        "#include <pthread.h>\n",
        1,
    ),
    ("mp_mutex_init(x) -> pthread_mutex_init(x, NULL)",
     r"\bmp_mutex_init\(([^()]*)\)", r"pthread_mutex_init(\1, NULL)", 1),
    ("mp_cond_init(x) -> pthread_cond_init(x, NULL)",
     r"\bmp_cond_init\(([^()]*)\)", r"pthread_cond_init(\1, NULL)", 1),
    ("mp_mutex_* -> pthread_mutex_*",
     r"\bmp_mutex_(lock|unlock|destroy)\b", r"pthread_mutex_\1", None),
    ("mp_cond_* -> pthread_cond_*",
     r"\bmp_cond_(wait|broadcast|signal|destroy)\b", r"pthread_cond_\1", None),
    ("mp_mutex type", r"\bmp_mutex\b", "pthread_mutex_t", 1),
    ("mp_cond type", r"\bmp_cond\b", "pthread_cond_t", 1),
    ("mp_assert -> assert", r"\bmp_assert\(", "assert(", None),
    (
        "repr.levels -> color.levels",
        r"params->repr\.levels",
        "params->color.levels",
        2,
    ),
    ("PL_COLOR_LEVELS_LIMITED -> MP_CSP_LEVELS_TV",
     r"\bPL_COLOR_LEVELS_LIMITED\b", "MP_CSP_LEVELS_TV", 1),
    (
        "pl_system_to_av(repr.sys) -> mp_csp_to_avcol_spc(color.space)",
        r"pl_system_to_av\(params->repr\.sys\)",
        "mp_csp_to_avcol_spc(params->color.space)",
        1,
    ),
    (
        # 0.40: pl_chroma_location (UNKNOWN=0, LEFT=1, CENTER=2, TOP_LEFT=3..)
        # minus 1 gives VapourSynth's 0=left, 1=center, 2=topleft.
        # 0.35: mp_chroma_location is AUTO, TOPLEFT, LEFT, CENTER.
        "chroma location mapping for mp_chroma_location",
        r"params->chroma_location - 1\b",
        "(params->chroma_location == MP_CHROMA_CENTER ? 1 : "
        "params->chroma_location == MP_CHROMA_TOPLEFT ? 2 : 0)",
        1,
    ),
    (
        "no mp_image_params.crop in 0.35",
        r"\n[ \t]*if \(mpi && \(mpi->params\.w != img\.w \|\| "
        r"mpi->params\.h != img\.h\)\)\n[ \t]*img\.params\.crop = [^;\n]*;",
        "",
        1,
    ),
    (
        "no mp_stream_info.get_display_res in 0.35",
        r"\n[ \t]*if \(info->get_display_res\) \{\n(?:[^\n]*\n)*?[ \t]*\}",
        "",
        1,
    ),
    (
        # Not a 0.35 adaptation but a crash fix (upstream bug, VS >= R74):
        # mapGetData() with a NULL error pointer aborts the whole process
        # ("Property read unsuccessful due to missing key but no error
        # output: _MP_IMAGE", then "terminate called ...") when a script
        # returns frames without mpv's _MP_IMAGE property (e.g. frames made
        # from scratch). With an error pointer mpv only logs
        # "Failed to get mp_image attributes!" and keeps going.
        "non-fatal lookup of _MP_IMAGE",
        r'(\bmpi = \(void \*\)p->vsapi->mapGetData\(map, "_MP_IMAGE", 0, )NULL\);',
        r"int err_mpi = 0;\n            \1&err_mpi);",
        1,
    ),
]

# Things that must not survive the edits (they do not exist in mpv 0.35.1).
FORBIDDEN = [
    r"\bmp_mutex", r"\bmp_cond", r"\bmp_assert\b", r"\bpl_[a-z]", r"\bPL_[A-Z]",
    r"->repr\.", r"\.crop\b", r"get_display_res", r"libplacebo",
]

# Sanity: we really hold the API4 version of the filter.
REQUIRED = [r"VSScript4\.h", r"getVSScriptAPI", r"createVideoFilter2",
            r'"container_fps"', r'"display_fps"', r'"video_in_dw"']


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    src_path, out_path = argv[1], argv[2]
    with open(src_path, encoding="utf-8") as f:
        text = f.read()

    for pat in REQUIRED:
        if not re.search(pat, text):
            print(f"adapt: input lacks {pat!r}; not the API4 vf_vapoursynth.c?",
                  file=sys.stderr)
            return 1

    for desc, pat, repl, expected in EDITS:
        text, n = re.subn(pat, repl, text, flags=re.MULTILINE)
        ok = n >= 1 if expected is None else n == expected
        print(f"adapt: {desc}: {n} replacement(s)")
        if not ok:
            print(f"adapt: FAILED: expected {expected or '>=1'} match(es) for "
                  f"{desc!r}, got {n}", file=sys.stderr)
            return 1

    bad = [p for p in FORBIDDEN if re.search(p, text)]
    if bad:
        for p in bad:
            for m in re.finditer(p, text):
                line = text.count("\n", 0, m.start()) + 1
                print(f"adapt: leftover {p!r} at line {line}", file=sys.stderr)
        return 1

    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"adapt: wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
