# Unit tests: one C program per tests/unit/test_*.c, linked against the core library.
file(GLOB UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
foreach(src ${UNIT_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE sluice_core)
  add_test(NAME unit_${name} COMMAND ${name})
  set_tests_properties(unit_${name} PROPERTIES
    ENVIRONMENT "SLUICE_SOURCE_DIR=${CMAKE_SOURCE_DIR}" TIMEOUT 120)
endforeach()

# Integration tests: Python (Debian's interpreter, standard library only) driving the real binary
# over real sockets.
find_program(SYSTEM_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
file(GLOB INTEG_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/integration/test_*.py)
foreach(src ${INTEG_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_test(NAME integ_${name} COMMAND ${SYSTEM_PYTHON} -m unittest -v ${name}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/integration)
  set_tests_properties(integ_${name} PROPERTIES
    ENVIRONMENT "SLUICE_BIN=$<TARGET_FILE:sluice>;SLUICE_SOURCE_DIR=${CMAKE_SOURCE_DIR};PYTHONDONTWRITEBYTECODE=1"
    TIMEOUT 600)
endforeach()

# Test tools the integration tests find next to the sluice binary.
add_executable(dkim-sign ${CMAKE_SOURCE_DIR}/tests/tools/dkim_sign.c)
target_link_libraries(dkim-sign PRIVATE sluice_core)

# The layering rule: each folder includes only the folders below it (scripts/check-layers).
add_test(NAME check_layers COMMAND ${SYSTEM_PYTHON} ${CMAKE_SOURCE_DIR}/scripts/check-layers
  ${CMAKE_SOURCE_DIR})

# The example Prometheus alerts: valid, and their promtool unit tests pass (skipped, not passed,
# without promtool).
add_test(NAME promtool_alerts COMMAND sh ${CMAKE_SOURCE_DIR}/tests/prometheus/check-alerts
  ${CMAKE_SOURCE_DIR})
set_tests_properties(promtool_alerts PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
