"""The bad-input catalogue: one row per case a hostile user tried, each through the CLI's entry point, expecting
exit code 2, one line on stderr naming the problem (no traceback), and nothing left at the output path. Add a row
for every bug of this kind."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from zskd.cli import main

# (case id, argv with {teacher} {ood} {tsv} {out} {tmp} placeholders, files to write first {name: text}, message)
DISTILL = ["distill", "--teacher", "{teacher}", "--ood", "{ood}", "--out", "{out}", "--cache-dir", "{tmp}/cache"]
CASES = [
    ("temperature-zero", [*DISTILL, "--temperature", "0"], {}, "--temperature 0.0: must be a positive number"),
    ("temperature-negative", [*DISTILL, "--temperature", "-1"], {}, "--temperature -1.0: must be a positive number"),
    ("temperature-nan", [*DISTILL, "--temperature", "nan"], {}, "--temperature nan: must be a positive number"),
    ("lr-negative", [*DISTILL, "--lr", "-1"], {}, "--lr -1.0: must be a positive number"),
    ("lr-infinite", [*DISTILL, "--lr", "inf"], {}, "--lr inf: must be a positive number"),
    ("batch-size-zero", [*DISTILL, "--batch-size", "0"], {}, "--batch-size 0: must be at least 1"),
    ("eval-every-zero", [*DISTILL, "--eval-every", "0"], {}, "--eval-every 0: must be at least 1"),
    ("checkpoint-every-zero", [*DISTILL, "--checkpoint-every", "0"], {}, "--checkpoint-every 0: must be at least 1"),
    ("max-length-zero", [*DISTILL, "--max-length", "0"], {}, "--max-length 0: must be at least 4"),
    ("steps-zero", [*DISTILL, "--steps", "0"], {}, "--steps 0: must be at least 1"),
    ("heldout-zero", [*DISTILL, "--heldout", "0"], {}, "--heldout 0: must be at least 1"),
    ("transfer-size-one", [*DISTILL, "--transfer-size", "1"], {}, "--transfer-size 1: must be at least 2"),
    ("words-reversed", [*DISTILL, "--min-words", "9", "--max-words", "3"], {}, "--max-words 3: must be at least 9"),
    ("augment-negative", [*DISTILL, "--augment", "-1"], {}, "--augment -1: must be at least 0"),
    ("kl-weight-negative", [*DISTILL, "--kl-weight", "-0.5"], {}, "--kl-weight -0.5: must be at least 0"),
    ("warmup-one", [*DISTILL, "--warmup-ratio", "1"], {}, "--warmup-ratio 1.0: must be a fraction in [0, 1)"),
    ("unknown-method", [*DISTILL, "--method", "magic"], {}, "unknown method 'magic'"),
    ("unknown-student", [*DISTILL, "--student", "gpt"], {}, "unknown student 'gpt'"),
    ("student-option-unknown", [*DISTILL, "--student", "bilstm", "--student-options", "depth=3"], {},
     "student bilstm has no option 'depth'"),
    ("student-option-default-student", [*DISTILL, "--student-options", "depth=3"], {},
     "student bilstm has no option 'depth'"),
    ("student-option-not-a-number", [*DISTILL, "--student", "bilstm", "--student-options", "hidden_size=big"], {},
     "student option hidden_size='big': give a whole number"),
    ("student-option-negative", [*DISTILL, "--student", "bilstm", "--student-options", "hidden_size=-4"], {},
     "student option hidden_size=-4: must not be negative"),
    ("student-option-malformed", [*DISTILL, "--student", "bilstm", "--student-options", "hidden_size"], {},
     "'hidden_size' is not name=value"),
    ("student-option-bad-widths", [*DISTILL, "--student", "cnn", "--student-options", "widths=2:x"], {},
     "student option widths='2:x': give whole numbers joined by ':'"),
    ("student-option-bool", [*DISTILL, "--student", "pair-bilstm", "--student-options", "cross_attention=maybe"], {},
     "cross_attention='maybe': give true or false"),
    ("size-budget-no-width", [*DISTILL, "--student", "transformer", "--max-parameters", "500000"], {},
     "--max-parameters: student transformer has no width to fit to a budget; give its shape in --student-options"),
    ("hard-fraction-one", [*DISTILL, "--hard-fraction", "1"], {}, "--hard-fraction 1.0: must be a fraction in [0, 1)"),
    ("pair-kinds-unknown", [*DISTILL, "--pair-kinds", "paraphrase"], {}, "unknown --pair-kinds paraphrase"),
    ("word-inputs-for-pairs", [*DISTILL, "--pairs", "--word-inputs", "100"], {},
     "--word-inputs adds single words, and this teacher reads sentence pairs: leave it out"),
    ("contrast-inputs-for-pairs", [*DISTILL, "--pairs", "--contrast-inputs", "100"], {},
     "--contrast-inputs joins single sentences, and this teacher reads sentence pairs: leave it out"),
    ("mixup-for-pairs", [*DISTILL, "--pairs", "--mixup-weight", "1"], {},
     "--mixup-weight mixes single sentences, and this teacher reads sentence pairs: leave it out"),
    ("mixup-every-zero", [*DISTILL, "--mixup-every", "0"], {}, "--mixup-every 0: must be at least 1"),
    ("teacher-runtime-unknown", [*DISTILL, "--teacher-runtime", "tpu"], {}, "unknown --teacher-runtime 'tpu'"),
    ("two-teachers", [*DISTILL, "--teacher-url", "http://127.0.0.1:9/x"], {}, "give one teacher"),
    ("no-teacher", ["distill", "--out", "{out}"], {}, "give one teacher"),
    ("yaml-bool-string", [*DISTILL, "--config", "{tmp}/c.yaml"], {"c.yaml": 'balance: "false"\n'},
     "balance is 'false' (str); it takes true or false"),
    ("yaml-number-string", [*DISTILL, "--config", "{tmp}/c.yaml"], {"c.yaml": "steps: ten\n"},
     "steps is 'ten' (str); it takes a whole number"),
    ("yaml-bool-for-number", [*DISTILL, "--config", "{tmp}/c.yaml"], {"c.yaml": "lr: true\n"},
     "lr is True (bool); it takes a number"),
    ("yaml-unknown-option", [*DISTILL, "--config", "{tmp}/c.yaml"], {"c.yaml": "learning_rate: 0.1\n"},
     "unknown option 'learning_rate'"),
    ("yaml-not-a-mapping", [*DISTILL, "--config", "{tmp}/c.yaml"], {"c.yaml": "- a\n- b\n"},
     "expected a mapping of option: value"),
    ("yaml-missing", [*DISTILL, "--config", "{tmp}/none.yaml"], {}, "none.yaml not found"),
    ("yaml-syntax-error", [*DISTILL, "--config", "{tmp}/c.yaml"], {"c.yaml": "steps: [1, 2\nlr: 0.1\n"},
     "c.yaml: not valid YAML at line"),
    ("yaml-tab-indent", [*DISTILL, "--config", "{tmp}/c.yaml"], {"c.yaml": "adversarial:\n\tmask_rate: 0.3\n"},
     "c.yaml: not valid YAML"),
    ("yaml-group-not-mapping", [*DISTILL, "--config", "{tmp}/c.yaml"], {"c.yaml": "adversarial: 3\n"},
     "adversarial is a mapping of option: value"),
    ("eval-data-missing", [*DISTILL, "--eval-data", "{tmp}/none.tsv"], {}, "none.tsv: no such file"),
    ("labels-mixed", [*DISTILL, "--eval-data", "{tmp}/mixed.tsv"],
     {"mixed.tsv": "label\tsentence\n1\ta good film\npositive\tfine\n0\tbad\n"},
     "labels mix numbers and names ('1' at line 2, 'positive' at line 3)"),
    ("labels-bool-and-number", [*DISTILL, "--eval-data", "{tmp}/mixed.tsv"],
     {"mixed.tsv": "label\tsentence\n1\ta good film\nTrue\tfine\n0\tbad\n"}, "labels mix numbers and names"),
    ("csv-swallowing-quote", [*DISTILL, "--eval-data", "{tmp}/q.csv"],
     {"q.csv": 'sentence,label\n"an open quote,1\nfine,1\nbad,0\nok,1\n'}, "q.csv:2: a quote opened here"),
    ("label-cache-truncated", [*DISTILL], {"cache/0123456789abcdef0123/shard-x.parquet": "PAR1 not really"},
     "a damaged label-cache file"),
    ("teacher-missing", ["distill", "--teacher", "{tmp}/nowhere", "--out", "{out}"], {}, "no model at"),
    ("teacher-function-bad", ["distill", "--teacher-function", "nomodule", "--out", "{out}"], {},
     "give module:function"),
    ("teacher-lm-no-labels", ["distill", "--teacher-lm", "smollm2-135m", "--out", "{out}"], {},
     "--teacher-lm needs the label names"),
    ("raw-scores-lm", ["distill", "--teacher-lm", "smollm2-135m", "--teacher-labels", "a,b", "--endpoint-raw-scores",
                       "--out", "{out}"], {}, "--endpoint-raw-scores is for --teacher-url or --teacher-function"),
    ("generate-no-teacher", ["generate", "--describe", "review", "--out", "{tmp}/g.parquet"], {}, "give one teacher"),
    ("white-box-remote", ["distill", "--teacher-url", "http://127.0.0.1:9/x", "--method", "adversarial",
                          "--out", "{out}"], {}, "method adversarial reads the teacher's weights"),
    ("endpoint-concurrency-zero", ["distill", "--teacher-url", "http://127.0.0.1:9/x", "--endpoint-concurrency", "0",
                                   "--out", "{out}"], {}, "--endpoint-concurrency 0 must be at least 1"),
    ("teacher-train-lr-negative", ["teacher-train", "--train", "{tsv}", "--out", "{out}", "--lr", "-1"], {},
     "--lr -1.0: must be a positive number"),
    ("teacher-train-epochs-zero", ["teacher-train", "--train", "{tsv}", "--out", "{out}", "--epochs", "0"], {},
     "--epochs 0.0: must be a positive number"),
    ("teacher-train-batch-zero", ["teacher-train", "--train", "{tsv}", "--out", "{out}", "--batch-size", "0"], {},
     "--batch-size 0: must be at least 1"),
    ("teacher-train-no-data", ["teacher-train", "--out", "{out}"], {}, "give --task NAME or --train FILE"),
    ("generate-out-not-parquet", ["generate", "--teacher", "{teacher}", "--describe", "review", "--out",
                                  "{tmp}/texts.json"], {}, "give a name ending in .parquet"),
    ("generate-report-clobber", ["generate", "--teacher", "{teacher}", "--describe", "review", "--out",
                                 "{tmp}/x.parquet"], {"x.json": '{"mine": "a file of the user"}'},
     "x.json exists and was not written by zskd generate"),
    ("generate-count-zero", ["generate", "--teacher", "{teacher}", "--describe", "review", "--count", "0", "--out",
                             "{out}.parquet"], {}, "--count 0: must be at least 1"),
    ("generate-top-p-above-one", ["generate", "--teacher", "{teacher}", "--describe", "review", "--top-p", "1.5",
                                  "--out", "{out}.parquet"], {}, "--top-p 1.5: must be in (0, 1]"),
    ("generate-lm-heldout-one", ["generate", "--teacher", "{teacher}", "--describe", "review", "--lm-heldout", "1",
                                 "--out", "{out}.parquet"], {}, "--lm-heldout 1.0: must be a fraction in [0, 1)"),
    ("generate-temperature-zero", ["generate", "--teacher", "{teacher}", "--describe", "review", "--temperature", "0",
                                   "--out", "{out}.parquet"], {}, "--temperature 0.0: must be a positive number"),
    ("generate-no-prompt-kind", ["generate", "--teacher", "{teacher}", "--out", "{out}.parquet"], {}, "--describe"),
    ("label-shard-bad", ["label", "--teacher", "{teacher}", "--inputs", "{ood}", "--shard", "3/2"], {},
     "--shard 3/2: give I/N with 0 <= I < N"),
    ("label-chunk-zero", ["label", "--teacher", "{teacher}", "--inputs", "{ood}", "--chunk-size", "0"], {},
     "--chunk-size 0 must be at least 1"),
    ("label-inputs-missing", ["label", "--teacher", "{teacher}", "--inputs", "{tmp}/none.txt"], {},
     "none.txt: no such file"),
    # data files
    ("eval-empty-file", ["eval", "--model", "{teacher}", "--data", "{tmp}/e.tsv"], {"e.tsv": ""}, "no examples in it"),
    ("eval-header-only", ["eval", "--model", "{teacher}", "--data", "{tmp}/e.tsv"], {"e.tsv": "label\tsentence\n"},
     "no examples in it"),
    ("train-empty-file", ["teacher-train", "--train", "{tmp}/e.tsv", "--out", "{out}"], {"e.tsv": ""},
     "no examples in it"),
    ("train-header-only", ["teacher-train", "--train", "{tmp}/e.csv", "--out", "{out}"], {"e.csv": "label,sentence\n"},
     "no examples in it"),
    ("train-jsonl-empty", ["teacher-train", "--train", "{tmp}/e.jsonl", "--out", "{out}"], {"e.jsonl": "\n\n"},
     "no examples in it"),
    ("eval-binary-as-tsv", ["eval", "--model", "{teacher}", "--data", "{tmp}/b.tsv"], {"b.tsv": b"\x00\x01PK\x03"},
     "binary data where text was expected"),
    ("ood-binary-as-txt", [*DISTILL[:4], "{tmp}/b.txt", *DISTILL[5:]], {"b.txt": b"\x7fELF\x00\x00"},
     "binary data where text was expected"),
    ("eval-fake-parquet", ["eval", "--model", "{teacher}", "--data", "{tmp}/f.parquet"], {"f.parquet": "text"},
     "not a readable Parquet file"),
    ("eval-unknown-format", ["eval", "--model", "{teacher}", "--data", "{tmp}/d.xlsx"], {"d.xlsx": "x"},
     "unknown format '.xlsx'"),
    ("eval-wrong-column", ["eval", "--model", "{teacher}", "--data", "{tsv}", "--text-col", "review"], {},
     "no column 'review'"),
    ("eval-wrong-label-column", ["eval", "--model", "{teacher}", "--data", "{tsv}", "--label-col", "y"], {},
     "no column 'y'"),
    ("eval-bom-column-named", ["eval", "--model", "{teacher}", "--data", "{tmp}/bom.tsv", "--text-col", "text"],
     {"bom.tsv": "\ufefflabel\tsentence\n1\tfun\n0\tbad\n"}, "no column 'text' (columns: label, sentence)"),
    ("eval-mostly-bad-rows", ["eval", "--model", "{teacher}", "--data", "{tmp}/m.tsv"],
     {"m.tsv": "label\tsentence\n1\t\n0\t\n1\t\n0\tfine\n"}, "3 of 4 rows are bad"),
    ("eval-json-is-a-directory", ["eval", "--model", "{teacher}", "--data", "{tsv}", "--json", "{tmp}"], {},
     "is a directory: give a file name for the JSON"),
    ("eval-unknown-task", ["eval", "--model", "{teacher}", "--task", "imdb"], {}, "invalid choice: 'imdb'"),
    ("eval-no-data", ["eval", "--model", "{teacher}"], {}, "give --task NAME or --data FILE"),
    # models
    ("model-empty-directory", ["eval", "--model", "{tmp}/m", "--data", "{tsv}"], {"m/README.md": "nothing"},
     "has no config.json"),
    ("model-missing-relative", ["eval", "--model", "./models/none", "--data", "{tsv}"], {},
     "no model at ./models/none"),
    # options that were already refused well, kept so that they stay so
    ("distill-out-exists", [*DISTILL], {"out/x": "a finished run"}, "already exists: remove it or choose another"),
    ("teacher-train-out-exists", ["teacher-train", "--train", "{tsv}", "--out", "{tmp}"], {},
     "already exists: remove it or choose another"),
    ("adversarial-mask-rate", [*DISTILL, "--method", "adversarial", "--adversarial-mask-rate", "1.5"], {},
     "--adversarial-mask-rate 1.5 is not a fraction"),
    ("adversarial-segments", [*DISTILL, "--method", "adversarial", "--adversarial-segments", "third"], {},
     "unknown --adversarial-segments 'third'"),
    ("embedding-guess-tokens", [*DISTILL, "--method", "embedding-guess", "--embedding-guess-min-tokens", "9",
                                "--embedding-guess-max-tokens", "3"], {}, "give 1 <= min <= max"),
    ("embedding-guess-prior", [*DISTILL, "--method", "embedding-guess", "--embedding-guess-word-prior", "heavy"], {},
     "unknown --embedding-guess-word-prior 'heavy'"),
    ("indomain-without-data", [*DISTILL, "--method", "indomain"], {}, "method indomain needs --indomain-data"),
    ("generate-without-file", [*DISTILL, "--method", "generate"], {}, "--generated FILE"),
    ("generate-file-missing", [*DISTILL, "--method", "generate", "--generated", "{tmp}/g.parquet"], {},
     "g.parquet not found"),
    ("ood-nearest-out-of-range", [*DISTILL, "--ood-nearest", "0"], {}, "--ood-nearest 0.0 is not a fraction"),
    ("rare-class-fraction-out-of-range", [*DISTILL, "--rare-class-fraction", "1.5"], {},
     "--rare-class-fraction 1.5 is not a fraction"),
    ("hidden-weight-bilstm", [*DISTILL, "--hidden-weight", "1"], {}, "--hidden-weight needs a student that takes"),
    ("eval-split-unknown", ["eval", "--model", "{teacher}", "--task", "sst2", "--split", "validation"], {},
     "task sst2 has no split 'validation'"),
    ("label-text-col2-on-txt", ["label", "--teacher", "{teacher}", "--inputs", "{ood}", "--text-col2", "b"], {},
     "a .txt file holds one text a line, not pairs"),
    ("generate-labels-count", ["generate", "--teacher", "{teacher}", "--describe", "review", "--labels", "a,b,c",
                               "--out", "{out}.parquet"], {}, "3 names but the teacher has 2 labels"),
    ("flag-unknown", ["distill", "--teacher", "{teacher}", "--temprature", "2", "--out", "{out}"], {},
     "unrecognized arguments: --temprature 2 (see: zskd --help)"),
    ("flag-not-a-number", [*DISTILL, "--steps", "many"], {}, "argument --steps: invalid int value: 'many'"),
    ("command-unknown", ["distil", "--teacher", "{teacher}"], {}, "invalid choice: 'distil'"),
    ("model-truncated-weights", ["eval", "--model", "{broken}/truncated", "--data", "{tsv}"], {},
     "cannot load a classifier from"),
    ("model-garbage-weights", ["eval", "--model", "{broken}/garbage", "--data", "{tsv}"], {},
     "cannot load a classifier from"),
    ("model-unknown-type", ["eval", "--model", "{broken}/unknown-type", "--data", "{tsv}"], {},
     "model type `nosuchmodel`"),
    ("model-pickled-weights", ["eval", "--model", "{broken}/pickled", "--data", "{tsv}"], {},
     "cannot load a classifier from"),
    ("student-corrupt-config", ["eval", "--model", "{broken}/student-config", "--data", "{tsv}"], {},
     "cannot load a classifier from"),
    ("student-truncated-weights", ["eval", "--model", "{broken}/student-weights", "--data", "{tsv}"], {},
     "cannot load a student from"),
    ("distill-teacher-truncated", ["distill", "--teacher", "{broken}/truncated", "--ood", "{ood}", "--out", "{out}"],
     {}, "cannot load a classifier from"),
    ("distill-student-base-empty", ["distill", "--teacher-url", "http://127.0.0.1:9/x", "--teacher-labels", "a,b",
                                    "--student-base", "{tmp}/m", "--out", "{out}"], {"m/x.txt": "x"},
     "has no config.json"),
    ("teacher-train-base-missing", ["teacher-train", "--train", "{tsv}", "--base", "{tmp}/nothing", "--out", "{out}"],
     {}, "no model at"),
    ("generate-generator-missing", ["generate", "--teacher", "{teacher}", "--describe", "review", "--generator",
                                    "{tmp}/nothing", "--out", "{out}.parquet"], {}, "cannot load a language model"),
    ("export-not-a-student", ["export", "--model", "{teacher}"], {}, "is not a zskd student directory"),
    ("export-missing", ["export", "--model", "{tmp}/nothing"], {}, "is not a zskd student directory"),
    ("eval-onnx-not-exported", ["eval", "--model", "{broken}/student-ok", "--onnx", "--data", "{tsv}"], {},
     "model.onnx not found"),
    ("eval-teacher-broken", ["eval", "--model", "{broken}/student-ok", "--teacher", "{broken}/garbage", "--data",
                             "{tsv}"], {}, "cannot load a classifier from"),
]


def filled(argv: list[str], places: dict[str, str]) -> list[str]:
    return [arg.format(**places) for arg in argv]


@pytest.fixture(scope="module")
def broken(tmp_path_factory, tiny_model):
    """Model directories damaged in the ways users damage them, and a sound student beside them."""
    from zskd.students import create_student
    from zskd.teacher import Teacher

    root = tmp_path_factory.mktemp("broken")
    for name in ("truncated", "garbage", "unknown-type", "pickled"):
        shutil.copytree(tiny_model, root / name)
    weights = (tiny_model / "model.safetensors").read_bytes()
    (root / "truncated" / "model.safetensors").write_bytes(weights[:500])
    (root / "garbage" / "model.safetensors").write_bytes(b"\x00" * 1000)
    config = json.loads((tiny_model / "config.json").read_text())
    (root / "unknown-type" / "config.json").write_text(json.dumps({**config, "model_type": "nosuchmodel"}))
    (root / "pickled" / "model.safetensors").unlink()
    (root / "pickled" / "pytorch_model.bin").write_bytes(b"pickle")
    teacher = Teacher.from_pretrained(tiny_model, bf16=False)
    student = create_student("bilstm", teacher, list(range(len(teacher.tokenizer))), {"hidden_size": 4})
    for name in ("student-ok", "student-config", "student-weights"):
        student.save_pretrained(root / name)
    (root / "student-config" / "config.json").write_text('{"zskd_student": "bil')
    (root / "student-weights" / "model.safetensors").write_bytes(b"\x00\x01")
    return root


@pytest.mark.parametrize("argv,files,message", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_one_clear_line(tmp_path, tiny_model, ood_file, sentiment_tsv, broken, capsys, argv, files,
                                     message):
    places = {"teacher": str(tiny_model), "ood": str(ood_file), "tsv": str(sentiment_tsv), "out": str(tmp_path / "out"),
              "tmp": str(tmp_path), "broken": str(broken)}
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    if "cache/0123456789abcdef0123" in " ".join(files):  # the damaged file goes where this teacher's cache is
        from zskd.teacher import Teacher

        fingerprint = Teacher.from_pretrained(tiny_model).fingerprint()[:20]  # the precision the command picks
        (tmp_path / "cache" / "0123456789abcdef0123").rename(tmp_path / "cache" / fingerprint)
        capsys.readouterr()  # the loading bar of that teacher is not the command's output
    existed = (tmp_path / "out").exists()  # a row about an output that exists made it
    code = main(filled(argv, places))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("zskd: WARNING")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("zskd: error: ") and message in lines[0], lines[0]
    assert (tmp_path / "out").exists() == existed and not (tmp_path / "out.parquet").exists()


def test_exit_codes_in_real_processes(tmp_path, tiny_model, ood_file):
    """A handful of rows again, in subprocesses: the exit status and stderr a shell sees."""
    for argv in (["distill", "--teacher", str(tiny_model), "--ood", str(ood_file), "--temperature", "0", "--out",
                  str(tmp_path / "a")],
                 ["teacher-train", "--out", str(tmp_path / "b")],
                 ["label", "--teacher", str(tiny_model), "--inputs", str(tmp_path / "none.txt")]):
        done = subprocess.run([sys.executable, "-m", "zskd.cli", *argv], capture_output=True, text=True, timeout=300)
        assert done.returncode == 2 and "Traceback" not in done.stderr and done.stderr.startswith("zskd: error: ")


def test_non_finite_values_never_pass(tmp_path, tiny_model, ood_file, capsys):
    """A NaN in the label cache or in a student's weights stops the run or the score with one line."""
    from zskd.labelling import label_with_teacher
    from zskd.teacher import Teacher

    teacher = Teacher.from_pretrained(tiny_model, bf16=False)
    label_with_teacher(teacher, ["a cat", "a dog"], tmp_path / "cache", progress=False)
    shard = next((tmp_path / "cache").glob("*/shard-*.parquet"))
    table = pq.read_table(shard).to_pydict()
    table["logits"][0][0] = float("nan")
    pq.write_table(pa.table(table), shard)
    assert main(["distill", "--teacher", str(tiny_model), "--ood", str(ood_file), "--cache-dir",
                 str(tmp_path / "cache"), "--no-teacher-bf16", "--out", str(tmp_path / "s")]) == 2
    assert "non-finite logits in the label cache" in capsys.readouterr().err and not (tmp_path / "s").exists()

    shard.unlink()
    assert main(["distill", "--teacher", str(tiny_model), "--ood", str(ood_file), "--cache-dir",
                 str(tmp_path / "cache"), "--transfer-size", "40", "--min-words", "2", "--steps", "2", "--batch-size",
                 "8", "--heldout", "8", "--no-teacher-bf16", "--out", str(tmp_path / "s")]) == 0
    weights = tmp_path / "s" / "model.safetensors"
    from safetensors.numpy import load_file, save_file

    tensors = load_file(weights)
    name = next(iter(tensors))
    tensors[name] = np.full_like(tensors[name], np.nan)
    save_file(tensors, weights)
    data = tmp_path / "eval.tsv"
    data.write_text("label\tsentence\n0\ta cat\n1\ta dog\n")
    assert main(["eval", "--model", str(tmp_path / "s"), "--data", str(data)]) == 2
    assert "non-finite logits" in capsys.readouterr().err
    assert main(["export", "--model", str(tmp_path / "s")]) == 2
    assert "non-finite logits" in capsys.readouterr().err and not (tmp_path / "s" / "model.onnx").exists()


def test_resuming_with_other_options_is_refused_unless_restarted(tmp_path, tiny_distill_config, capsys):
    from zskd.distill import distill

    config = tiny_distill_config("run")
    distill(config, stop_after_steps=4)  # interrupted after its first checkpoint
    argv = ["distill", "--teacher", config.teacher, "--ood", config.ood, "--cache-dir", config.cache_dir,
            "--transfer-size", "60", "--min-words", "2", "--max-words", "20", "--steps", "12", "--batch-size", "8",
            "--eval-every", "4", "--checkpoint-every", "4", "--heldout", "10", "--max-vocab", "40",
            "--student-options", "embedding_dim=16,hidden_size=16", "--no-teacher-bf16", "--eval-data",
            config.eval_data, "--out", config.out]
    assert main([*argv, "--lr", "0.01"]) == 2
    assert "was started with other options (lr): run the same command to resume it, or add --restart" in \
        capsys.readouterr().err
    assert main([*argv, "--lr", "0.01", "--restart"]) == 0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["lr"] == 0.01


def test_a_teacher_that_diverges_is_stopped_not_saved(tmp_path, tiny_model, sentiment_tsv, capsys):
    code = main(["teacher-train", "--train", str(sentiment_tsv), "--base", str(tiny_model), "--lr", "1e30",
                 "--epochs", "3", "--batch-size", "4", "--no-freeze-embeddings", "--no-bf16", "--out",
                 str(tmp_path / "t")])
    err = capsys.readouterr().err
    assert code == 2 and "the loss is" in err and "the teacher was not saved" in err, err[-500:]
    assert not (tmp_path / "t").exists()
