# Configures, builds and runs the consumer project. Variables: SOURCE_DIR, BINARY_DIR, GENERATOR,
# CONFIGURE_ARGS (a list).
file(REMOVE_RECURSE ${BINARY_DIR})
execute_process(
    COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BINARY_DIR} -G ${GENERATOR} ${CONFIGURE_ARGS}
    RESULT_VARIABLE result)
if(result)
    message(FATAL_ERROR "configuring the consumer failed: ${result}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BINARY_DIR} -j 2 RESULT_VARIABLE result)
if(result)
    message(FATAL_ERROR "building the consumer failed: ${result}")
endif()
execute_process(COMMAND ${BINARY_DIR}/consumer RESULT_VARIABLE result OUTPUT_VARIABLE output)
message(STATUS "consumer printed: ${output}")
if(result OR NOT output MATCHES "db:1 keyedpool")
    message(FATAL_ERROR "the consumer failed: ${result}")
endif()
