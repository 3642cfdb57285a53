"""zskd: zero-shot and low-data knowledge distillation of text classifiers.

    import zskd
    student, report = zskd.distill(teacher="runs/teachers/sst2", method="ood", student="bilstm", out="runs/student")
    student.logits(["a gripping , funny film"])
"""

__version__ = "0.1.0"

from zskd.distill import DistillConfig, distill  # noqa: E402
from zskd.students import load_student  # noqa: E402
from zskd.teacher import Teacher  # noqa: E402

__all__ = ["DistillConfig", "Teacher", "distill", "load_student", "__version__"]
