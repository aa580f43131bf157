#!/usr/bin/env python3
"""Writes sklearn_absent_classes.json: scikit-learn's classification_report and confusion_matrix
for a 5-class case where class 2 is in neither the labels nor the predictions and class 4 is
only predicted. EvalTests checks `nnbuild eval` against it without needing scikit-learn.

    pip install scikit-learn && python3 Tests/nnbuildTests/Fixtures/make_sklearn_absent_classes.py
"""
import json
import os
import warnings

import sklearn
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import classification_report, confusion_matrix

names = ["cat", "dog", "bird", "fish", "a rather long class name"]
y_true = [0, 0, 0, 1, 1, 1, 3, 3, 0, 1]
y_pred = [0, 1, 0, 1, 1, 4, 3, 0, 0, 1]
present = sorted(set(y_true) | set(y_pred))
everything = list(range(len(names)))

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UndefinedMetricWarning)
    default = classification_report(y_true, y_pred, labels=present, target_names=[names[i] for i in present],
                                     output_dict=True, zero_division=0)
    default["confusion_matrix"] = confusion_matrix(y_true, y_pred).tolist()
    all_classes = classification_report(y_true, y_pred, labels=everything, target_names=names,
                                         output_dict=True, zero_division=0)
    all_classes["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=everything).tolist()

out = {
    "scikit-learn": sklearn.__version__,
    "names": names,
    "y_true": y_true,
    "y_pred": y_pred,
    "report": default,
    "report_all_classes": all_classes,
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sklearn_absent_classes.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print("wrote", path)
