"""A small real-text NER set made offline from templates (for the MiniLM test).

Training and validation use different templates and different names,
places and organisations, so tagging the validation set takes what the
encoder knows about words, not memorised names.
"""

import numpy as np

TRAIN = {
    "templates": [
        "{PER} lives in {LOC} .",
        "{PER} was born in {LOC} .",
        "{ORG} opened an office in {LOC} .",
        "{PER} works for {ORG} .",
        "yesterday {PER} met {PER} in {LOC} .",
        "{ORG} said on monday that sales rose in {LOC} .",
    ],
    "PER": ["John Smith", "Maria Garcia", "Ahmed Khan", "Anna Muller", "Peter",
            "Laura Rossi", "James Wilson", "Emma", "Carlos Silva", "Sophie Martin"],
    "LOC": ["Paris", "London", "Berlin", "Madrid", "New York", "Cairo", "Sydney",
            "Toronto", "Vienna", "Lisbon"],
    "ORG": ["Google", "Microsoft", "United Nations", "Toyota", "Reuters",
            "Barclays", "Nestle", "Boeing"],
}
VALIDATION = {
    "templates": [
        "{PER} moved to {LOC} last year .",
        "the {ORG} team visited {LOC} .",
        "{PER} joined {ORG} after leaving {LOC} .",
        "officials in {LOC} thanked {PER} .",
    ],
    "PER": ["David Brown", "Yuki Tanaka", "Olga Petrova", "Michael", "Fatima Ali",
            "Robert Johnson", "Chen Wei", "Isabel Lopez"],
    "LOC": ["Tokyo", "Rome", "Chicago", "San Francisco", "Moscow", "Mumbai",
            "Dublin", "Athens"],
    "ORG": ["Apple", "IBM", "Red Cross", "Siemens", "Intel", "Samsung",
            "World Bank", "Nokia"],
}


def ner_text(spec, n, seed=0):
    """`(sentences, tags)`: `n` sentences from `spec` with IOB2 tags."""
    rng = np.random.default_rng(seed)
    sentences, tags = [], []
    for _ in range(n):
        template = spec["templates"][rng.integers(len(spec["templates"]))]
        words, labels = [], []
        for part in template.split():
            if part.startswith("{"):
                kind = part[1:-1]
                entity = spec[kind][rng.integers(len(spec[kind]))].split()
                words += entity
                labels += [f"B-{kind}"] + [f"I-{kind}"] * (len(entity) - 1)
            else:
                words.append(part)
                labels.append("O")
        sentences.append(words)
        tags.append(labels)
    return sentences, tags
