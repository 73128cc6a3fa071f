# A small but complete bake project: variables, a function, inheritance, a matrix,
# a group and a `target:` context. `kiln bake --print` resolves it offline.

variable "REGISTRY" {
  default = "127.0.0.1:5000"
}

variable "VERSION" {
  type        = string
  default     = "1.2.3"
  description = "Release version"
  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", VERSION))
    error_message = "VERSION must look like 1.2.3."
  }
}

function "tag" {
  params = [name, version]
  result = ["${REGISTRY}/${name}:${version}", "${REGISTRY}/${name}:latest"]
}

group "default" {
  targets = ["app", "tools"]
}

target "_common" {
  args = {
    VERSION = VERSION
  }
  labels = {
    "org.opencontainers.image.version" = VERSION
  }
}

target "base" {
  inherits   = ["_common"]
  dockerfile = "Dockerfile"
  target     = "base"
}

target "app" {
  inherits  = ["_common"]
  contexts  = { base = "target:base" }
  tags      = tag("app", VERSION)
  platforms = ["linux/amd64", "linux/arm64"]
  output    = ["type=oci,dest=build/app.tar"]
}

target "tools" {
  inherits = ["_common"]
  name     = "tools-${tool}"
  matrix = {
    tool = ["lint", "test"]
  }
  target = tool
  tags   = tag("tools-${tool}", VERSION)
  output = ["type=oci,dest=build/tools-${tool}.tar"]
}
