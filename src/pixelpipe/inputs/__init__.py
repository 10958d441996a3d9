"""Input images of an edit (issue 16): verified like an output, stripped of metadata, stored
content-addressed under ``inputs/<sha256>.<ext>``.

``store_input`` takes an upload's bytes, ``fetch_input`` a URL (through the fetch guard),
``load_input`` gives a stored input's bytes to a provider. Refusals are
:class:`~pixelpipe.errors.InputRejected` (422) saying what to fix.
"""

from pixelpipe.inputs.clean import clean_image, clean_image_async
from pixelpipe.inputs.limits import INPUT_FORMATS, InputLimits
from pixelpipe.inputs.lineage import record_source, render_inputs, source_of
from pixelpipe.inputs.remote import fetch_input
from pixelpipe.inputs.store import (
    UPLOAD_ID_PREFIX,
    StoredInput,
    digest_of_upload_id,
    find_input,
    input_key,
    load_input,
    store_clean,
    store_input,
    upload_id,
)
from pixelpipe.intake import MAX_INPUT_IMAGES

__all__ = [
    "INPUT_FORMATS",
    "MAX_INPUT_IMAGES",
    "UPLOAD_ID_PREFIX",
    "InputLimits",
    "StoredInput",
    "clean_image",
    "clean_image_async",
    "digest_of_upload_id",
    "fetch_input",
    "find_input",
    "input_key",
    "load_input",
    "record_source",
    "render_inputs",
    "source_of",
    "store_clean",
    "store_input",
    "upload_id",
]
