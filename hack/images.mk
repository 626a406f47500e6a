# Container images (images/*/Dockerfile), built with no Docker daemon and no registry by
# hack/build-images.sh: buildah (chroot, vfs; layers cached in ~/.cache/rollforward/containers)
# on a Debian bookworm base bootstrapped by mmdebstrap. Output: _out/images/<name>.oci.tar.
.PHONY: images images-test images-lint images-clean

images: ## build the operator, bento-runtime, trainer and router images into _out/images/*.oci.tar
	nice -n 10 bash hack/build-images.sh

images-test: setup ## build the images, then run each one's entrypoint with runc (read-only root, non-root)
	$(PY) -m pytest -q tests/unit/test_dockerfiles.py tests/integration/test_images.py

images-lint: setup ## hadolint and the recipe rules on every images/*/Dockerfile
	$(VENV)/bin/hadolint images/*/Dockerfile
	$(PY) -m pytest -q tests/unit/test_dockerfiles.py

images-clean: ## drop the image build cache (~/.cache/rollforward/containers) and _out/images
	bash hack/build-images.sh --clean
