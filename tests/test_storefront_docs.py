"""Each way docs/embed.md shows to mint a customer token (Python, Node, PHP), run for real: the
token it makes opens the shopper's launcher; made with another secret, it is refused."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.factories import customer

pytestmark = pytest.mark.django_db
DOCS = Path(__file__).resolve().parent.parent / "docs" / "embed.md"
HARNESS = {  # (fence, command, lines that print a token for argv's secret and external id)
    "python": ("python", ["python3"], "\nimport sys\nprint(customer_token(sys.argv[1], sys.argv[2]))\n"),
    "node": ("js", ["node"], "\nconsole.log(customerToken(process.argv[2], process.argv[3]));\n"),
    "php": ("php", ["php"], "\necho customer_token($argv[1], $argv[2]);\n"),
}


@pytest.mark.parametrize("language", sorted(HARNESS))
def test_each_minting_snippet_makes_a_token_the_widgets_accept(language, api, tea_shop, tmp_path):
    fence, command, harness = HARNESS[language]
    if shutil.which(command[0]) is None:
        pytest.skip(f"needs {command[0]} (CI installs it)")
    snippet = DOCS.read_text().split(f"<!-- mint-{language} -->\n```{fence}\n", 1)[1].split("```", 1)[0]
    script = tmp_path / f"mint.{fence}"
    script.write_text(snippet + harness)
    if language == "python":
        command = [sys.executable]  # the project's Python, which has PyJWT
    customer(tea_shop, "cust-42", email="ada@example.com", first_name="Ada")
    key = api.get("/api/v1/embed/").json()["public_key"]
    secret = api.post("/api/v1/embed/rotate-secret/").json()["secret"]

    def mint(with_secret: str) -> str:
        run = subprocess.run([*command, str(script), with_secret, "cust-42"], capture_output=True, text=True,
                             timeout=30)
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    me = Client(headers={"X-Store": key, "Authorization": f"Bearer {mint(secret)}"}).get("/embed/v1/me/")
    assert me.status_code == 200 and me.json()["member"]["first_name"] == "Ada"
    forged = Client(headers={"X-Store": key, "Authorization": f"Bearer {mint('sk_live_' + 'z' * 43)}"})
    assert forged.get("/embed/v1/me/").status_code == 401
