config = {
    "name": "greetings",
    "schema": {"type": "object", "properties": {"text": {"type": "string"}},
               "required": ["text"]},
    "baseConfig": {"storageType": "default"},
}
