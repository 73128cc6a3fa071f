#!/bin/sh
echo "hello from kiln ${APP_VERSION}"
