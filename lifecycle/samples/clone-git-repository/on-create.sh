#!/bin/bash
# Clones a repository into the persistent folder once, when the instance is created.
set -e
REPOSITORY=${REPOSITORY:-"https://github.com/aws/amazon-sagemaker-examples.git"}
cd "$HOME/SageMaker"
git clone --quiet "$REPOSITORY"
echo "cloned $REPOSITORY into $HOME/SageMaker"
