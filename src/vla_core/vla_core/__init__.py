"""vla_core: a ROS-free library for vision-language-action robot policies.

Policies (vision / language / proprioception encoders, fusion, chunked action heads), demonstration
data, training, fine-tuning, evaluation and export, plus the ``vla`` command line.
"""

__version__ = "0.1.0"
