"""Data access: `mysql` is the original layer, `dynamodb` its migration target."""
