"""The openapi.yaml check can fail: each mutation below of openapi.yaml (or
of the description) must make check_api_description.py exit 1, and the
files as they are must pass. Run by scripts/api-description --check.

    python3 Tests/api/test_check_api_description.py openapi.yaml Tests/api/magicbell-api.json
"""
import copy
import json
import os
import subprocess
import sys
import tempfile

import yaml

CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check_api_description.py")


def passes(doc, description):
    with tempfile.TemporaryDirectory() as work:
        openapi_path, description_path = os.path.join(work, "openapi.yaml"), os.path.join(work, "d.json")
        with open(openapi_path, "w") as f:
            yaml.safe_dump(doc, f)
        with open(description_path, "w") as f:
            json.dump(description, f)
        return subprocess.run([sys.executable, CHECKER, openapi_path, description_path],
                              capture_output=True).returncode == 0


def main(openapi_path, description_path):
    with open(openapi_path) as f:
        doc = yaml.safe_load(f)
    with open(description_path) as f:
        description = json.load(f)
    schemas = doc["components"]["schemas"]
    admin = "/magicbell-admin/jwt/project"

    def text_length(d, _):
        d["components"]["schemas"]["Text"]["maxLength"] = 254

    def name_optional(d, _):
        d["components"]["schemas"]["CreateProjectTokenRequest"]["required"] = []

    def renamed(d, _):
        d["paths"][admin]["get"]["operationId"] = "listProjectTokens"

    def extra_operation(d, _):
        d["paths"][admin]["put"] = copy.deepcopy(d["paths"][admin]["post"])

    def created_at_optional(d, _):
        d["components"]["schemas"]["AccessToken"]["required"].remove("created_at")

    def open_body(d, _):
        del d["components"]["schemas"]["CreateUserTokenRequest"]["additionalProperties"]

    def no_query(d, _):
        d["paths"][admin]["get"]["parameters"] = []

    def new_model_field(_, desc):
        desc["models"]["DiscardTokenResponse"]["fields"].append(
            {"name": "reason", "type": "string", "required": False, "nullable": True})

    def new_operation(_, desc):
        desc["operations"].append({"operationId": "fetchTeamTokens", "method": "GET", "path": "jwt/team",
                                   "paginated": True, "answer": "TokenList"})

    def looser_than_magicbell(d, desc):
        # Loosened in Swift, so in the generated description and in openapi.yaml alike.
        for field in desc["models"]["CreateUserTokenRequest"]["fields"]:
            if field["name"] == "external_id":
                del field["maxLength"]
        d["components"]["schemas"]["CreateUserTokenRequest"]["properties"]["external_id"] = {"type": ["string", "null"]}

    assert "Text" in schemas and passes(doc, description), "the files as they are must pass"
    failures = []
    mutations = [text_length, name_optional, renamed, extra_operation, created_at_optional, open_body, no_query,
                 new_model_field, new_operation, looser_than_magicbell]
    for mutate in mutations:
        mutated_doc, mutated_description = copy.deepcopy(doc), copy.deepcopy(description)
        mutate(mutated_doc, mutated_description)
        if passes(mutated_doc, mutated_description):
            failures.append(mutate.__name__)
    if failures:
        sys.exit(f"check_api_description.py passed these mutations: {failures}")
    print(f"check_api_description.py fails on all {len(mutations)} mutations")


if __name__ == "__main__":
    main(*sys.argv[1:3])
