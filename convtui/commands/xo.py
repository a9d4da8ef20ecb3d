"""`convtui xo`: the toy ConvNet's grids as plain text or markdown, for slides and handouts.

Same maths (convtui.toy.xo) and same number formatting (convtui.toy.formatting) as the app's lessons.
"""

from __future__ import annotations

import sys

STAGES = ("conv", "relu", "pool")


def add_parser(sub) -> None:
    parser = sub.add_parser("xo", help="print the X/O toy ConvNet's grids (text or markdown)",
                            description="Print an X/O image and its feature maps, ReLU and pooled maps through "
                                        "the lessons' toy net, truncated to two decimals the way the lecture shows them.")
    parser.add_argument("--image", default="x", metavar="NAME",
                        help="image name (default x; --list shows every name)")
    parser.add_argument("--list", action="store_true",
                        help="list the images (the lecture's and your own) with their labels, and exit")
    parser.add_argument("--filter", default="all", metavar="NAME",
                        help="backslash, x, slash (or \\ X /), or all (default)")
    parser.add_argument("--stage", default="all", metavar="STAGE", help="conv, relu, pool or all (default)")
    parser.add_argument("--pool", default="max", metavar="MODE", help="max (default) or mean pooling")
    parser.add_argument("--format", default="text", metavar="FORMAT", help="text (default) or markdown")
    parser.add_argument("--depth", default=1, type=int, metavar="N",
                        help="conv-ReLU-pool layers of the toy net to print, 1 (default) to 3; the deep stacking "
                             "and vote lessons use 2 (3 maps of 2x2 = 12 numbers)")


# An unknown --image lists the names when there are at most this many; a learner's folder may hold hundreds.
LISTED_NAMES = 20


def unknown_image_message(name: str, names: list[str]) -> str:
    """One line for an unknown --image: every name when they are few, else the closest ones and --list."""
    if len(names) <= LISTED_NAMES:
        return f"unknown image {name!r}; choose one of: {', '.join(names)}"
    import difflib

    close = difflib.get_close_matches(name, names, n=3)
    hint = ""
    if close:
        listed = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
        hint = f"did you mean {listed}? "
    return f"unknown image {name!r}; {hint}`convtui xo --list` shows all {len(names):,}"


def image_list(images) -> str:
    """One line per image: name, label, whose it is and its note (the lecture's first, in their order)."""
    width = max(len(image.name) for image in images)
    return "".join(f"{image.name:<{width}}  {image.label}  {'lecture' if image.source == 'shipped' else 'yours':7}"
                   f"  {image.note}".rstrip() + "\n" for image in images)


def run(args) -> int:
    from convtui.core.errors import UsageError
    from convtui.toy.formatting import format_grid
    from convtui.toy.images import ImageFormatError, load_images
    from convtui.toy.xo import FILTERS, find_filter, stack

    try:
        found, skipped = load_images()
    except ImageFormatError as exc:
        raise UsageError(f"cannot read the shipped images: {exc}") from exc
    for problem in skipped:  # the learner's files that were not read: said, never silently dropped
        print(f"convtui xo: skipped {problem}", file=sys.stderr)
    images = {image.name: image for image in found}
    if args.list:
        sys.stdout.write(image_list(found))
        return 0
    if args.image not in images:
        raise UsageError(unknown_image_message(args.image, list(images)))
    if args.filter == "all":
        filters = list(FILTERS)
    elif find_filter(args.filter) is not None:
        filters = [find_filter(args.filter)]
    else:
        raise UsageError(f"unknown filter {args.filter!r}; choose one of: "
                         f"{', '.join(f.name for f in FILTERS)}, all")
    if args.stage not in STAGES + ("all",):
        raise UsageError(f"unknown stage {args.stage!r}; choose one of: {', '.join(STAGES)}, all")
    if args.pool not in ("max", "mean"):
        raise UsageError(f"unknown pool mode {args.pool!r}; choose one of: max, mean")
    if args.format not in ("text", "markdown"):
        raise UsageError(f"unknown format {args.format!r}; choose one of: text, markdown")
    if not 1 <= args.depth <= 3:
        raise UsageError(f"--depth is 1, 2 or 3, got {args.depth}")

    markdown = args.format == "markdown"
    stage_names = STAGES if args.stage == "all" else (args.stage,)
    image = images[args.image]
    blocks = [format_grid(image.pixels, decimals=0, markdown=markdown,
                          title=f"image {image.name} (label {image.label}), 9x9")]
    # The one toy net (convtui.toy.xo.TOY_NET) the lessons and the vote use; layer 1 is VALID, later layers
    # are 3x3x3 convs over all three maps with SAME padding.
    stages = {each.name: each.maps for each in stack(image.pixels, args.depth, args.pool)}
    captions = {"conv": "filtered (sum of products / 9)", "relu": "after ReLU",
                "pool": f"after 2x2 {args.pool} pooling, stride 2"}
    for layer in range(1, args.depth + 1):
        prefix = "" if layer == 1 else f"layer {layer}, "
        for toy_filter in filters:
            k = FILTERS.index(toy_filter)
            for stage in stage_names:
                grid = stages[f"{stage} {layer}"][k]
                title = (f"{prefix}filter {toy_filter.symbol} ({toy_filter.name}): {captions[stage]}, "
                         f"{grid.shape[0]}x{grid.shape[1]}")
                blocks.append(format_grid(grid, markdown=markdown, title=title))
    sys.stdout.write("\n\n".join(blocks) + "\n")
    return 0
