# glidemed: `make demo` first, then `make test`; `make reproduce` re-analyses the paper's
# published ratings. Real studies: make survey/analyze STUDY=<id>.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch comes first so that a pinned build (CPU, or a given CUDA) is the one used.
TORCH ?= torch torchvision
STUDY ?= demo
RESPONSES ?= build/$(STUDY)/responses

.PHONY: env glide demo prescreen-demo reproduce test docs survey analyze bench clean

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[test]'
	# CITATION.cff is validated with cffconvert, which pins jsonschema<4 but runs on 4.
	$(BIN)/pip install --quiet --no-deps cffconvert==2.0.0
	touch $@

# GLIDE needs torch and glide-text2im (from its git repository): only for generating.
glide: env
	$(BIN)/pip install -e '.[glide]'

demo: env
	$(BIN)/glidemed generate demo --no-progress
	$(BIN)/glidemed build demo
	$(BIN)/glidemed simulate demo --raters 5 --seed 1 --dropout 0.2 --effect condition:soft=-0.5
	$(BIN)/glidemed analyze demo --bootstrap 200
	$(BIN)/glidemed generate turing-demo --no-progress
	$(BIN)/glidemed build turing-demo
	$(BIN)/glidemed simulate turing-demo --raters 6 --seed 1 --effect condition:model-a=3 --effect condition:model-b=2
	$(BIN)/glidemed analyze turing-demo --bootstrap 500
	$(BIN)/glidemed generate pairwise-demo --no-progress
	$(BIN)/glidemed build pairwise-demo
	$(BIN)/glidemed simulate pairwise-demo --raters 8 --seed 1 --effect condition:model-b=0.8 --effect condition:model-c=-0.6
	$(BIN)/glidemed analyze pairwise-demo --bootstrap 500

# Prompt engineering as an experiment: rank the variants with a tiny random CLIP, then
# rate the derived study (v1 and the best variant per style) and check the ranking.
PRESCREENED := build/prompts-demo/prescreen/study.toml
prescreen-demo: env
	$(BIN)/python -c "import sys; sys.path.insert(0, 'tests'); from tiny_clip import save_tiny_open_clip; save_tiny_open_clip('build/tiny-clip')"
	$(BIN)/glidemed prescreen prompts-demo --clip tiny=local-dir:build/tiny-clip --images 2 --no-progress
	$(BIN)/glidemed generate $(PRESCREENED) --no-progress
	$(BIN)/glidemed build $(PRESCREENED)
	$(BIN)/glidemed simulate $(PRESCREENED) --raters 5 --seed 1
	$(BIN)/glidemed analyze $(PRESCREENED) --bootstrap 200

# The paper's analysis from its published ratings (../shared/kather2022/, beside the
# project), compared with the medians and tests it reports.
PAPER_RATINGS ?= ../shared/kather2022/observer_study_glide_v1_merge.xlsx
reproduce: env
	$(BIN)/glidemed analyze kather2022 --ratings $(PAPER_RATINGS) --nonsensical paper
	$(BIN)/python surveys/kather2022/compare_with_paper.py build/kather2022/analysis

# From the npm registry for the browser tests: axe-core checks the survey page's
# accessibility; puppeteer-core drives Firefox (firefox-esr) over WebDriver BiDi.
NODE_TOOLS := axe-core@4.14.1 puppeteer-core@25.16.0
NODE_STAMP := build/node/.installed-$(subst @,-,$(subst $() ,_,$(NODE_TOOLS)))

$(NODE_STAMP):
	@command -v npm >/dev/null || { echo "make test needs Node.js and npm (the survey page's browser tests)"; exit 1; }
	npm install --silent --no-audit --no-fund --prefix build/node $(NODE_TOOLS)
	touch $@

test: env $(NODE_STAMP)
	$(BIN)/python -m pytest -q

# The documentation site into build/site/, with fresh screenshots of the demo survey and report.
docs: env
	GLIDEMED_DOCS_IMG=docs/img $(BIN)/python -m pytest -q tests/test_docs.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

survey: env
	$(BIN)/glidemed generate $(STUDY)
	$(BIN)/glidemed build $(STUDY)

analyze: env
	$(BIN)/glidemed analyze $(STUDY) $(RESPONSES)

bench: env
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf build/demo build/turing-demo build/pairwise-demo
