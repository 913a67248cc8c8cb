"""openapi.yaml's upstream part against the Swift models' description.

    python3 Tests/api/check_api_description.py openapi.yaml Tests/api/magicbell-api.json

Tests/api/magicbell-api.json is what scripts/api-description prints from the
Swift models (MagicBellAPI's JwtService and its models, as RouteTable.app
forwards them). Every operation there must be in openapi.yaml under the admin
prefix with its method, operationId, path parameter, query parameters,
request body model and success model; every model's fields must match (names,
types, required, nullable, lengths, minimum, closed or not); and openapi.yaml
may describe no other admin operation. Prints every difference; exits 1 on any.
"""
import json
import sys

import yaml

# MagicBell's published request models (magicbell-jwt-openapi.json, the
# JwtService's OpenAPI, 2026), written here by hand and not from the Swift
# models: the description must be at least this strict, so that a rule
# loosened in Swift (and so in the fake, which is generated from it) fails
# here. (The fake is deliberately stricter than MagicBell: it takes only
# what the responder forwards.)
PUBLISHED = {
    "CreateProjectTokenRequest": {
        "required": ["name"],
        "fields": {"name": {"type": "string", "maxLength": 255}, "expiry": {"type": "integer", "minimum": 1}},
    },
    "CreateUserTokenRequest": {
        "required": [],
        "fields": {"email": {"type": "string", "maxLength": 255}, "external_id": {"type": "string", "maxLength": 255},
                   "name": {"type": "string", "maxLength": 255}, "expiry": {"type": "integer", "minimum": 1}},
    },
}


def main(openapi_path, description_path):
    with open(openapi_path) as f:
        doc = yaml.safe_load(f)
    with open(description_path) as f:
        description = json.load(f)
    problems = []
    models = description["models"]

    def resolve(node):
        while isinstance(node, dict) and "$ref" in node:
            target = doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def ref_name(node):
        return node.get("$ref", "").rsplit("/", 1)[-1] if isinstance(node, dict) else None

    def flatten(schema):
        """One schema's type, nullability and limits, through $ref, allOf, oneOf and type lists."""
        schema = resolve(schema)
        flat = {"nullable": False}
        for part in schema.get("allOf", []):
            flat.update(flatten(part))
        if "oneOf" in schema:
            branches = [flatten(branch) for branch in schema["oneOf"]]
            others = [branch for branch in branches if branch.get("type") != "null"]
            if len(others) == 1:
                flat.update(others[0])
            flat["nullable"] = len(others) < len(branches)
        for key, value in schema.items():
            if key in ("allOf", "oneOf", "$ref"):
                continue
            if key == "type" and isinstance(value, list):
                flat["nullable"] = "null" in value
                kinds = [kind for kind in value if kind != "null"]
                flat["type"] = kinds[0] if len(kinds) == 1 else kinds
            else:
                flat[key] = value
        return flat

    def compare_model(name, node, where):
        model = models[name]
        flat = flatten(node)
        properties = flat.get("properties", {})
        fields = {field["name"]: field for field in model["fields"]}
        if set(properties) != set(fields):
            problems.append(f"{where}: properties {sorted(properties)}, the model {name} has {sorted(fields)}")
        required = {field for field, spec in fields.items() if spec["required"]}
        if set(flat.get("required", [])) != required:
            problems.append(f"{where}: required {sorted(flat.get('required', []))}, the model {name} requires {sorted(required)}")
        if (flat.get("additionalProperties") is False) != model["closed"]:
            problems.append(f"{where}: additionalProperties false must be {model['closed']} (the model {name})")
        one_of = sorted(sum((branch.get("required", []) for branch in flat.get("anyOf", [])), []))
        if one_of != sorted(model["requiresOneOf"]):
            problems.append(f"{where}: anyOf requires {one_of}, the model {name} one of {model['requiresOneOf']}")
        for field_name, field in fields.items():
            if field_name not in properties:
                continue
            spec = flatten(properties[field_name])
            at = f"{where}.{field_name}"
            if spec.get("type") != field["type"]:
                problems.append(f"{at}: type {spec.get('type')}, the model says {field['type']}")
            if spec["nullable"] != field["nullable"]:
                problems.append(f"{at}: nullable {spec['nullable']}, the model says {field['nullable']}")
            for key in ("minLength", "maxLength", "minimum"):
                # A minLength of 0 says what its absence says.
                expected, actual = field.get(key), spec.get(key)
                if key == "minLength":
                    expected, actual = expected or None, actual or None
                if actual != expected:
                    problems.append(f"{at}: {key} {actual}, the model says {expected}")
            if field["type"] == "object":
                compare_model(field["model"], properties[field_name], at)
            elif field["type"] == "array":
                compare_model(field["model"], spec.get("items", {}), at + "[]")

    prefix = description["adminPrefix"]
    described = set()
    for operation in description["operations"]:
        path = prefix + operation["path"]
        parameter = operation.get("pathParameter")
        if parameter and path not in doc.get("paths", {}):
            # OpenAPI allows one template name per path: where two operations
            # share a path with different ids (jwt/user/...), it is {id}.
            parameter, path = "id", path.replace("{" + parameter + "}", "{id}")
        method = operation["method"].lower()
        described.add((path, method))
        where = f"{operation['method']} {path}"
        entry = (doc.get("paths", {}).get(path) or {}).get(method)
        if entry is None:
            problems.append(f"{where} ({operation['operationId']}) is not in openapi.yaml")
            continue
        if entry.get("operationId") != operation["operationId"]:
            problems.append(f"{where}: operationId {entry.get('operationId')}, the model says {operation['operationId']}")
        parameters = [resolve(parameter) for parameter in entry.get("parameters", [])]
        path_parameters = [parameter["name"] for parameter in parameters if parameter.get("in") == "path"]
        if path_parameters != ([parameter] if parameter else []):
            problems.append(f"{where}: path parameters {path_parameters}")
        query = {parameter["name"]: flatten(parameter.get("schema", {})).get("type")
                 for parameter in parameters if parameter.get("in") == "query"}
        expected_query = {parameter["name"]: parameter["type"] for parameter in description["pagination"]} \
            if operation["paginated"] else {}
        if query != expected_query:
            problems.append(f"{where}: query parameters {query}, the model says {expected_query}")
        body = entry.get("requestBody")
        if operation.get("body"):
            schema = (resolve(body or {}).get("content", {}).get("application/json") or {}).get("schema", {})
            if ref_name(schema) != operation.get("body"):
                problems.append(f"{where}: request body {ref_name(schema)}, the model says {operation['body']}")
        elif body is not None:
            problems.append(f"{where}: has a request body; the operation takes none")
        successes = [code for code in entry.get("responses", {}) if str(code).startswith("2")]
        if len(successes) != 1:
            problems.append(f"{where}: {len(successes)} success responses, not 1")
            continue
        response = resolve(entry["responses"][successes[0]])
        schema = (response.get("content", {}).get("application/json") or {}).get("schema", {})
        if ref_name(schema) != operation["answer"]:
            problems.append(f"{where}: answers {ref_name(schema)}, the model says {operation['answer']}")
    compared = set()
    for operation in description["operations"]:
        for name in filter(None, (operation.get("body"), operation["answer"])):
            if name in compared:
                continue
            compared.add(name)
            if name not in doc.get("components", {}).get("schemas", {}):
                problems.append(f"components.schemas.{name} is not in openapi.yaml")
                continue
            compare_model(name, doc["components"]["schemas"][name], f"components.schemas.{name}")
    for name, published in PUBLISHED.items():
        model = models.get(name)
        if model is None:
            problems.append(f"the description has no {name}, which MagicBell publishes")
            continue
        fields = {field["name"]: field for field in model["fields"]}
        for field_name in published["required"]:
            if not fields.get(field_name, {}).get("required"):
                problems.append(f"{name}.{field_name}: MagicBell requires it; the model does not")
        for field_name, rule in published["fields"].items():
            field = fields.get(field_name)
            if field is None:
                problems.append(f"{name}.{field_name}: MagicBell publishes it; the model has no such field")
                continue
            if field["type"] != rule["type"]:
                problems.append(f"{name}.{field_name}: type {field['type']}, MagicBell's is {rule['type']}")
            if "maxLength" in rule and field.get("maxLength", float("inf")) > rule["maxLength"]:
                problems.append(f"{name}.{field_name}: maxLength {field.get('maxLength')}, MagicBell's is {rule['maxLength']}")
            if "minimum" in rule and field.get("minimum", float("-inf")) < rule["minimum"]:
                problems.append(f"{name}.{field_name}: minimum {field.get('minimum')}, MagicBell's is {rule['minimum']}")
    for path, item in doc.get("paths", {}).items():
        if not path.startswith(prefix + "jwt"):
            continue
        for method in item:
            if method in ("get", "post", "put", "patch", "delete") and (path, method) not in described:
                problems.append(f"{method.upper()} {path} is in openapi.yaml but is none of the models' operations")
    for problem in problems:
        print("openapi.yaml: " + problem, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"openapi.yaml agrees with {description_path}: {len(description['operations'])} operations, "
          f"{len(compared)} models")


if __name__ == "__main__":
    main(*sys.argv[1:3])
