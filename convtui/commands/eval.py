"""`convtui eval CHECKPOINT [--data DIR]`: test accuracy as a percentage and the 10x10 confusion matrix.

Exit codes: 0 ok, 1 a checkpoint or data folder that cannot be used, 2 a bad flag value.
"""

from __future__ import annotations


from convtui.core.errors import EXIT_OK


def add_parser(sub) -> None:
    parser = sub.add_parser("eval", help="test accuracy and confusion matrix of a checkpoint",
                            description="Evaluate a checkpoint written by `convtui train` on the test set.")
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint.npz (or the run folder holding it)")
    parser.add_argument("--data", metavar="DIR", default=None,
                        help="folder of MNIST-layout IDX files (default: the data the checkpoint was trained on)")
    parser.add_argument("--threads", metavar="T", type=int, default=None, help="numeric threads (default: all)")


def run(args) -> int:
    from convtui import runtime
    from convtui.commands.flags import check_flag

    runtime.configure(check_flag("threads", args.threads))
    from pathlib import Path

    from convtui.core.storage.checkpoint import load_model
    from convtui.core.storage.datasets import check_saved_data_folder, load_split
    from convtui.core.training.evaluate import check_model_fits, confusion_matrix, evaluate
    from convtui.core.training.text import format_confusion_matrix
    from convtui.core.storage.run_folder import CHECKPOINT_FILE

    path = Path(args.checkpoint)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    model, checkpoint = load_model(path)
    # A model trained with --data (say Fashion-MNIST) is evaluated on that data unless told otherwise.
    if not args.data:
        check_saved_data_folder(checkpoint.config.data, path)
    test = load_split("test", args.data or checkpoint.config.data)
    n_outputs = check_model_fits(model, test, path)
    result = evaluate(model, test)
    confusion = confusion_matrix(test.labels, result.predictions, n_classes=n_outputs)
    print(f"model {checkpoint.model_name}, {checkpoint.trained()} trained ({path})")
    print(f"test accuracy: {100 * result.accuracy:.2f}% ({result.n_correct}/{len(test)}), "
          f"loss {result.loss:.4f}")
    print(format_confusion_matrix(confusion))
    return EXIT_OK
