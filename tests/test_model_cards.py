"""Every shipped generator has its own model card beside it, with a Hugging Face-style header."""

import re

import pytest

from pix2pix_lib import weights

KEYS = ("license", "library_name", "pipeline_tag", "tags", "datasets")


def header_of(card_file) -> dict:
    text = card_file.read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match, f"{card_file.name}: no YAML header between --- lines"
    fields, key = {}, None
    for line in match.group(1).splitlines():
        if line.startswith("  - ") and key:
            fields[key].append(line[4:])
        else:
            key, _, value = line.partition(":")
            fields[key] = value.strip() or []
    return fields


@pytest.mark.parametrize("name", sorted(weights.SHIPPED_MODELS))
def test_each_shipped_generator_has_its_own_card_with_a_header(name):
    card_file = weights.SHIPPED_MODELS[name].with_suffix(".md")
    fields = header_of(card_file)
    assert set(KEYS) <= set(fields), f"{card_file.name}: missing {set(KEYS) - set(fields)}"
    assert fields["pipeline_tag"] == "image-to-image" and fields["library_name"] == "pix2pix-course"
    assert fields["tags"] and fields["datasets"]
    body = card_file.read_text(encoding="utf-8")
    assert weights.SHIPPED_MODELS[name].name in body.split("---", 2)[2].splitlines()[1]  # its title names the file
    if fields["license"] == "other":  # a licence of its own: named, and said in words in the card
        assert fields.get("license_name") and "non-commercial" in body


@pytest.mark.parametrize("name, word", [("shoes", "zappos"), ("cars", "carvana")])
def test_the_licences_in_the_headers_are_the_ones_the_weights_carry(name, word):
    _, card = weights.load_generator(weights.SHIPPED_MODELS[name])
    assert "non-commercial" in str(card.licence).lower() and word in str(card.licence).lower()
    assert word in header_of(weights.SHIPPED_MODELS[name].with_suffix(".md"))["license_name"]


def test_the_emoji_generators_header_says_cc_by_sa():
    assert header_of(weights.SHIPPED_WEIGHTS.with_suffix(".md"))["license"] == "cc-by-sa-4.0"
