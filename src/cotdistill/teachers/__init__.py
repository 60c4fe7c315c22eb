"""Teachers: the protocol every method stage calls, its backends, the cache, prompts and stages.

Backends are imported from their modules (`teachers.http`, `teachers.local`, `teachers.vllm`) so that
importing this package loads neither httpx nor vLLM.
"""

from .base import Completion, Demonstration, SamplingParams, Teacher, TextGenerator
from .cache import TeacherCache
from .generator import CachedGenerator, Request, TeacherRequestError
from .keys import ApiKey, load_api_key
from .prompted import PromptedTeacher
from .prompts import PromptSet
from .stages import STAGES, StageReport, TeachSettings, run_teach

__all__ = [
    "STAGES", "ApiKey", "CachedGenerator", "Completion", "Demonstration", "PromptSet", "PromptedTeacher",
    "Request", "SamplingParams", "StageReport", "TeachSettings", "Teacher", "TeacherCache", "TeacherRequestError",
    "TextGenerator", "load_api_key", "run_teach",
]
