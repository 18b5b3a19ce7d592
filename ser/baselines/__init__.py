"""usage: python -m ser.baselines [data=... split=...] [features=<set> | [<set>,...]] [classifiers=[svm,logreg]] [out=<dir>]

The classical reference: utterance-level features, then scikit-learn classifiers (an RBF SVM
``svm``, logistic regression ``logreg``, a linear SVM ``linsvm``; class-balanced; default
``classifiers=svm,logreg``), standardised on the training split, with ``C`` chosen by speaker-grouped
cross-validation over each fold's training speakers, never the test speaker. Same corpus loading,
same speaker-independent splits and the same summary files as ``train.py`` (``metrics.json`` per
fold, ``cv_summary.json`` and ``cv_summary.md`` per classifier under ``out``), so deep and
classical runs compare side by side.

Feature sets (``ser.feature_sets``): any ``conf/features`` frontend (``logmel`` functionals,
the default; ``ge2e`` and ``ssl`` hidden-state statistics, with ``features.*`` overrides), and the
openSMILE sets ``egemaps`` and ``compare``. A list fuses them, each block weighted equally after
standardisation. Extracted features are cached on disk (``<paths.cache_dir>/baselines``).
``normalize=speaker`` standardises each speaker's features with their own statistics first
(transductive: report it separately).

Needs the ``baselines`` extra (scikit-learn, opensmile).
"""
