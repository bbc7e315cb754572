"""Model code shared by the document, evaluation and retraining tasks (MiniLM, loaded offline)."""


def rows_digest(texts: list[str], labels: list[str]) -> str:
    """The digest of labelled rows in the one form the pack pins them everywhere: a model card's and the catalog's
    ``training_data_digests``, a retraining split's seal, and a drift check's ``reference_rows`` (so an evaluation can
    tell whether its drift check compared the candidate's own training rows with the rows it was tested on)."""
    from flytekitplugins.aios_core.digest import digest_value

    return digest_value({"texts": texts, "labels": labels})
