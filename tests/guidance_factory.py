"""Small study files and fixtures shared by the CLIP guidance tests and benchmark."""

from __future__ import annotations

import pytest

HISTO = '''
[[styles]]
key = "histo"
label = "Histopathology"
template = "A histopathological image of {description}"
'''
XRAY = '''
[[styles]]
key = "xray"
label = "X-ray"
template = "An x-ray image of {description}"
'''


def study_toml(conditions: str, styles: str = HISTO, images_per_prompt: int = 1) -> str:
    """A one-topic study file with the given [[conditions]] and [[styles]] tables."""
    return f'''
id = "guidance"
title = "t"
instructions = "i"
consent = "c"
seed = 5
images_per_prompt = {images_per_prompt}
images_per_panel = 1
{conditions}
{styles}
[[topics]]
key = "lungs"
short = "the lungs"
detailed = "the lungs, organs in the chest"
'''


@pytest.fixture(scope="module")
def torch_one_thread():
    """torch with one CPU thread (two threads on a busy 2-core machine crawl)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)
