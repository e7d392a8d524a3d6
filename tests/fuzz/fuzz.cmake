# libFuzzer targets, built only with -DSLUICE_FUZZ=ON and clang (see tests/fuzz/run.sh and
# `make fuzz`). The core library gets coverage instrumentation and the sanitizers; each
# tests/fuzz/fuzz_*.c becomes one fuzzer executable.
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "SLUICE_FUZZ=ON needs clang: cmake -DCMAKE_C_COMPILER=clang -DSLUICE_FUZZ=ON")
endif()
set(SLUICE_FUZZ_SAN -fsanitize=address,undefined -fno-sanitize-recover=undefined
    -fno-omit-frame-pointer)
target_compile_options(sluice_core PRIVATE -fsanitize=fuzzer-no-link ${SLUICE_FUZZ_SAN})
# Everything linking the core (sluice, unit tests, fuzzers) needs the sanitizer runtimes.
target_link_options(sluice_core INTERFACE ${SLUICE_FUZZ_SAN})

file(GLOB FUZZ_TARGETS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
foreach(src ${FUZZ_TARGETS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer ${SLUICE_FUZZ_SAN})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  target_link_libraries(${name} PRIVATE sluice_core)
endforeach()
