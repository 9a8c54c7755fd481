SELECT count(*), COUNTIF({{ keep }}) FROM {{ staging_table }}
