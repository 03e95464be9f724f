"""Config specs: parsing by version, validation, translation to the newest model."""
